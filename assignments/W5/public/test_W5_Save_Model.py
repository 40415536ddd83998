"""W5/W6 save-model public rubric: both files were written."""

import pytest


@pytest.mark.points(1)
def test_both_files_are_saved(student):
    for name in ("net_all.pkl", "net_params.pkl"):
        try:
            student.read_file(name, max_bytes=64 << 20)
        except Exception as exc:  # noqa: BLE001 - missing or unreadable: the same feedback
            pytest.fail(f"{name} was not saved in the notebook's folder ({exc})")
