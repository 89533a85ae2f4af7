"""``harness matrix``: the suite on other kernels and cgroup layouts, each cell in a VM.

A cell is one kernel x one cgroup mode (v1, hybrid, v2), running the chosen cases on the chosen
runtimes. Each cell boots its kernel with virtme-ng (QEMU) on a copy-on-write view of the host
root, so the host's Python, virtualenv, runtimes and this checkout are there as they are; the
cell's folder is shared read-write and receives the usual ``--results`` folder (results.jsonl,
environment.json with a ``matrix_cell`` block: kernel, cgroup mounts, controllers), the
``stage`` file (booted, cgroup layout, running, done), ``pytest.log`` and the VM's console.

* :mod:`.kernels`: Debian kernel packages, fetched, checked against the index's SHA256,
  unpacked and cached by checksum;
* :mod:`.guest`: what runs in the VM (the cgroup layout, pytest, ``cell.json``);
* :mod:`.run`: the cells as process groups, ``jobs`` at a time, each with a deadline; KVM
  when a test boot under it works, else TCG; nothing left running on Ctrl-C, SIGTERM or a crash.

The results of all cells merge into one report (``harness report --merge``), a column per
``runtime @ cell`` and the differences between cells first.
"""
