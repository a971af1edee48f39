"""PESQ-NB scoring for `npm run bench:plc` (driven by bench/plc/run.ts; not run by hand).

Reads the manifest run.ts wrote (clean references, loss masks and the degraded signals
of the methods run in Node), adds spandsp's concealer as a yardstick, scores every
degraded signal with PESQ-NB (ITU-T P.862 via PyPI `pesq`) against its clean reference
and writes the scores as JSON.

spandsp is Debian's libspandsp (package libspandsp-dev / libspandsp2), called through
ctypes: plc_rx() on every received 20 ms frame, plc_fillin() on every lost one. It is a
yardstick only; none of its code is in this repository.

usage: score.py MANIFEST.json OUT.json
"""

import ctypes
import ctypes.util
import json
import os
import sys

import numpy as np
from pesq import pesq

FRAME = 160


def load_spandsp():
    names = [ctypes.util.find_library("spandsp"), "libspandsp.so.2", "libspandsp.so"]
    for name in names:
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        lib.plc_init.restype = ctypes.c_void_p
        lib.plc_init.argtypes = [ctypes.c_void_p]
        lib.plc_rx.restype = ctypes.c_int
        lib.plc_rx.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int16), ctypes.c_int]
        lib.plc_fillin.restype = ctypes.c_int
        lib.plc_fillin.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int16), ctypes.c_int]
        lib.plc_free.restype = ctypes.c_int
        lib.plc_free.argtypes = [ctypes.c_void_p]
        return lib
    return None


def spandsp_conceal(lib, ref, mask):
    """ref: int16 clean signal; mask: one bool per 20 ms frame, True = lost."""
    out = np.array(ref[: len(mask) * FRAME], dtype=np.int16, copy=True)
    state = lib.plc_init(None)
    if not state:
        raise RuntimeError("plc_init failed")
    try:
        for k, lost in enumerate(mask):
            frame = out[k * FRAME : (k + 1) * FRAME]
            ptr = frame.ctypes.data_as(ctypes.POINTER(ctypes.c_int16))
            if lost:
                lib.plc_fillin(state, ptr, FRAME)
            else:
                lib.plc_rx(state, ptr, FRAME)
    finally:
        lib.plc_free(state)
    return out


def read_i16(path):
    return np.fromfile(path, dtype="<i2").astype(np.int16)


def main():
    manifest_path, out_path = sys.argv[1], sys.argv[2]
    with open(manifest_path) as f:
        manifest = json.load(f)
    base = os.path.dirname(manifest_path)
    lib = load_spandsp()
    if lib is None:
        sys.exit("score.py: libspandsp not found (Debian: apt-get install libspandsp-dev)")
    scores = []
    for item in manifest["items"]:
        ref = read_i16(os.path.join(base, item["ref"]))
        mask = [c == "1" for c in item["mask"]]
        n = len(mask) * FRAME
        ref = ref[:n]
        degraded = {m: read_i16(os.path.join(base, p))[:n] for m, p in item["degraded"].items()}
        degraded["spandsp"] = spandsp_conceal(lib, ref, mask)
        row = {"clip": item["clip"], "pattern": item["pattern"], "seed": item["seed"], "pesq": {}}
        for method, deg in degraded.items():
            if len(deg) != n:
                raise RuntimeError(f"{item['clip']} {method}: {len(deg)} samples, expected {n}")
            row["pesq"][method] = float(pesq(8000, ref.astype(np.float64), deg.astype(np.float64), "nb"))
        scores.append(row)
        print(".", end="", file=sys.stderr, flush=True)
    print("", file=sys.stderr)
    with open(out_path, "w") as f:
        json.dump({"scores": scores}, f)


if __name__ == "__main__":
    main()
