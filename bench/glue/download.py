"""Download GLUE from its official locations (as nyu-mll's download_glue_data.py does), sha256-checked.

Each archive is checked against the size and sha256 the HF `glue` dataset records for that URL before anything
is unpacked; MRPC is assembled from its source files like the original script. The unpacked files then go
through the same validation and atomic store as `--from DIR`. Nothing here can run offline: the error says
to import a local copy instead.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from bench.errors import UsageError
from bench.glue import data
from bench.glue.tasks import Download, Task

TIMEOUT_S = 60


def fetch(item: Download, dest: Path) -> Path:
    """Stream `item` to dest/<name>, checking size and sha256; a mismatch leaves nothing behind."""
    name = item.url.rsplit("/", 1)[-1]
    final, tmp = dest / name, dest / f".{name}.part"
    h, size = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(item.url, timeout=TIMEOUT_S) as resp, open(tmp, "wb") as out:
            while block := resp.read(1 << 20):
                h.update(block)
                size += len(block)
                out.write(block)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"cannot download {item.url} ({exc}); offline? import a local GLUE copy with "
                         "`bench data glue --from DIR`") from exc
    if size != item.size or h.hexdigest() != item.sha256:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"{item.url}: got {size} bytes with sha256 {h.hexdigest()[:16]}…, expected {item.size} "
                         f"bytes with sha256 {item.sha256[:16]}… (corrupted or changed upstream)")
    tmp.rename(final)
    return final


def _unpack(task: Task, archive: Path, dest: Path) -> None:
    """Only the task's train/dev files, by exact member name (no path tricks from the archive)."""
    out = dest / task.glue_dir
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
        for split in task.files:
            member = next((n for n in names if n.endswith(f"/{split}.tsv") and n.count("/") == 1), None)
            if member is None:
                raise UsageError(f"{archive}: no {split}.tsv inside (members: {', '.join(sorted(names)[:6])}…)")
            with z.open(member) as src, open(out / f"{split}.tsv", "wb") as dst:
                shutil.copyfileobj(src, dst)


def download(tasks: list[Task]) -> dict[str, Path]:
    """Fetch, verify and store `tasks`; all downloads finish and validate before the cache is touched."""
    cache = data.glue_cache()
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=cache) as tmp:
        root = Path(tmp)
        for task in tasks:
            files = [fetch(item, root) for item in task.download]
            if task.name == "mrpc":
                by_name = {f.name: f for f in files}
                train, dev = data.assemble_mrpc(by_name["msr_paraphrase_train.txt"].read_bytes(),
                                                by_name["mrpc_dev_ids.tsv"].read_bytes(), "MRPC download")
                (root / "MRPC").mkdir(exist_ok=True)
                (root / "MRPC" / "train.tsv").write_bytes(train)
                (root / "MRPC" / "dev.tsv").write_bytes(dev)
            else:
                _unpack(task, files[0], root)
        parsed = {t.name: data.read_task_dir(t, root, verify_checksum=False) for t in tasks}
        origin = "official GLUE download (archive sha256 verified): " + ", ".join(
            i.url for t in tasks for i in t.download)
        return {t.name: data.store(t, parsed[t.name], origin=origin) for t in tasks}
