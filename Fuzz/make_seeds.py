#!/usr/bin/env python3
"""Seed corpora for the libFuzzer harnesses: corpus/<reader>/ gets a few small valid files each.

    python3 Fuzz/make_seeds.py        (needs numpy; the PNG seeds are the test fixtures)
"""
import gzip
import io
import json
import os
import shutil
import struct
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "Tests", "CKIOTests", "Fixtures", "png")


def folder(name):
    path = os.path.join(HERE, "corpus", name)
    os.makedirs(path, exist_ok=True)
    return path


def main():
    png = folder("png")
    for name in sorted(os.listdir(FIXTURES)):
        if name.endswith(".png"):
            shutil.copy(os.path.join(FIXTURES, name), png)

    idx = folder("idx")
    images = bytes([0, 0, 8, 3]) + struct.pack(">III", 2, 3, 2) + bytes(range(0, 240, 20))
    labels = bytes([0, 0, 8, 1]) + struct.pack(">I", 5) + bytes([1, 2, 3, 4, 9])
    for name, data in [("images", images), ("labels", labels)]:
        open(os.path.join(idx, name), "wb").write(data)
        open(os.path.join(idx, name + ".gz"), "wb").write(gzip.compress(data, mtime=0))

    npy = folder("npy")
    arrays = {"f4": np.arange(8, dtype="<f4").reshape(2, 1, 2, 2) / 8, "f8": np.linspace(-1, 1, 3),
              "u1": np.arange(6, dtype="u1").reshape(2, 3), "scalar": np.float32(1.0), "empty": np.zeros((0, 3), "<f4")}
    for name, a in arrays.items():
        buf = io.BytesIO()
        np.save(buf, a)
        open(os.path.join(npy, name + ".npy"), "wb").write(buf.getvalue())

    ckpt = folder("checkpoint")
    tensors = [("conv.weight", np.arange(8, dtype="<f4").reshape(2, 1, 2, 2)), ("conv.bias", np.array([0.5, -0.5], "<f4")),
               ("step", np.array(3, "<f4"))]
    data = b"".join(t.tobytes() for _, t in tensors)
    for checksum in (False, True):
        meta = {"config": json.dumps({"model": "unet-s", "lr": 1e-4}), "step": "12"}
        if checksum:
            meta["data_checksum"] = "crc32:%08x" % zlib.crc32(data)
        header, offset = {"__metadata__": dict(sorted(meta.items()))}, 0
        for name, t in tensors:
            header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + t.nbytes]}
            offset += t.nbytes
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)
        name = "with-checksum" if checksum else "without-checksum"
        open(os.path.join(ckpt, name + ".safetensors"), "wb").write(struct.pack("<Q", len(text)) + text + data)


if __name__ == "__main__":
    main()
