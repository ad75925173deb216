#!/usr/bin/env python3
"""Writes the PNG fixtures of PNGFixtureTests and records what PIL reads from each (pil.json).

The files are encoded by hand (zlib + struct), so every chunk is the one named: 16-bit samples, gAMA,
palettes with and without tRNS, gray+alpha, 1/2/4-bit gray, Adam7 interlacing. Run from anywhere:

    python3 Tests/CKIOTests/Fixtures/png/make_png_fixtures.py

pil.json, per file: size, what was stored (samples after expanding palette and low-bit gray, alpha
dropped; `stored_max` is 255 or 65535), and PIL's reading (`pil_mode`, `pil` samples, `pil_max`).
"""
import json
import os
import struct
import warnings
import zlib

import numpy as np
from PIL import Image, __version__ as pillow_version

warnings.simplefilter("ignore")     # PIL's note that palette transparency could become RGBA

HERE = os.path.dirname(os.path.abspath(__file__))


def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def pack_row(samples, bits):
    """One scanline's samples (ints) into bytes, big-endian, low bit depths packed MSB first."""
    if bits == 8:
        return bytes(samples)
    if bits == 16:
        return b"".join(struct.pack(">H", s) for s in samples)
    out, acc, n = bytearray(), 0, 0
    for s in samples:
        acc = (acc << bits) | s
        n += bits
        if n == 8:
            out.append(acc); acc, n = 0, 0
    if n:
        out.append(acc << (8 - n))
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def encode(path, width, height, color_type, bits, rows, extra=b"", interlace=False, palette=None, trns=None):
    """rows: per row a list of samples per pixel (tuples), as stored in the file."""
    spp = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    raw = bytearray()
    if interlace:
        for x0, y0, dx, dy in ADAM7:
            xs, ys = range(x0, width, dx), range(y0, height, dy)
            if not xs or not ys:
                continue
            for y in ys:
                raw.append(0)
                raw += pack_row([v for x in xs for v in rows[y][x]], bits)
    else:
        for y in range(height):
            raw.append(0)
            raw += pack_row([v for px in rows[y] for v in px], bits)
    assert all(len(px) == spp for r in rows for px in r)
    png = b"\x89PNG\r\n\x1a\n"
    png += chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bits, color_type, 0, 0, 1 if interlace else 0))
    png += extra
    if palette is not None:
        png += chunk(b"PLTE", b"".join(bytes(c) for c in palette))
    if trns is not None:
        png += chunk(b"tRNS", trns)
    png += chunk(b"IDAT", zlib.compress(bytes(raw), 9))
    png += chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def gama(gamma):
    return chunk(b"gAMA", struct.pack(">I", round(100000 / gamma)))


def pil_reading(path):
    im = Image.open(path)
    mode = im.mode
    im.load()
    values = lambda image: np.asarray(image).astype(np.int64).ravel().tolist()
    if mode in ("I;16", "I;16B", "I"):
        return mode, values(im), 65535
    if mode in ("P", "RGBA", "RGB"):
        return mode, values(im.convert("RGB")), 255
    if mode in ("LA", "PA"):
        return mode, values(im.getchannel(0)), 255
    if mode in ("1", "L"):
        return mode, values(im.convert("L")), 255
    raise ValueError(f"{path}: PIL mode {mode} not handled")


def main():
    cases = {}

    def add(name, width, height, color_type, bits, rows, stored, stored_max, **kw):
        path = os.path.join(HERE, name)
        encode(path, width, height, color_type, bits, rows, **kw)
        mode, values, pil_max = pil_reading(path)
        channels = 3 if color_type in (2, 3, 6) else 1
        cases[name] = dict(width=width, height=height, channels=channels, stored=stored, stored_max=stored_max,
                           pil_mode=mode, pil=values, pil_max=pil_max)

    grid = lambda w, h, f: [[f(x, y) for x in range(w)] for y in range(h)]
    flat = lambda rows, k: [px[c] for r in rows for px in r for c in range(k)]

    # 16-bit gray: 50% (32768) must read as 32768 / 65535, not through linear light (186/255).
    g16 = [0, 32768, 65535, 1, 257, 12345, 65534, 40000]
    rows = grid(4, 2, lambda x, y: (g16[y * 4 + x],))
    add("gray16.png", 4, 2, 0, 16, rows, g16, 65535)

    rgb16 = [(0, 32768, 65535), (256, 511, 1000), (65280, 65535, 128), (30000, 40000, 50000), (1, 2, 3), (32767, 32768, 32769)]
    rows = grid(3, 2, lambda x, y: rgb16[y * 3 + x])
    add("rgb16.png", 3, 2, 2, 16, rows, flat(rows, 3), 65535)

    g8 = [0, 1, 64, 127, 128, 129, 200, 255]
    rows = grid(4, 2, lambda x, y: (g8[y * 4 + x],))
    add("gray8-gama1.0.png", 4, 2, 0, 8, rows, g8, 255, extra=gama(1.0))
    add("gray8-gama2.2.png", 4, 2, 0, 8, rows, g8, 255, extra=gama(1 / 2.2))
    c8 = [(128, 64, 200), (0, 255, 128), (10, 20, 30), (250, 251, 252)]
    rows = grid(2, 2, lambda x, y: c8[y * 2 + x])
    add("rgb8-gama1.0.png", 2, 2, 2, 8, rows, flat(rows, 3), 255, extra=gama(1.0))

    palette = [(255, 0, 0), (0, 128, 0), (10, 20, 30), (128, 128, 128)]
    idx = [0, 1, 2, 3, 3, 2, 1, 0, 2]
    rows = grid(3, 3, lambda x, y: (idx[y * 3 + x],))
    stored = [v for i in idx for v in palette[i]]
    add("palette8.png", 3, 3, 3, 8, rows, stored, 255, palette=palette)
    add("palette8-trns.png", 3, 3, 3, 8, rows, stored, 255, palette=palette, trns=bytes([0, 128, 255, 7]))
    add("palette2-trns.png", 3, 3, 3, 2, rows, stored, 255, palette=palette, trns=bytes([0, 64]))

    ga = [(200, 0), (100, 255), (5, 9), (128, 77)]
    rows = grid(2, 2, lambda x, y: ga[y * 2 + x])
    add("gray-alpha8.png", 2, 2, 4, 8, rows, [p[0] for p in ga], 255)
    rgba = [(10, 20, 30, 0), (40, 50, 60, 128), (70, 80, 90, 255), (128, 2, 3, 4)]
    rows = grid(2, 2, lambda x, y: rgba[y * 2 + x])
    add("rgba8.png", 2, 2, 6, 8, rows, [v for p in rgba for v in p[:3]], 255)

    for bits in (1, 2, 4):
        top = (1 << bits) - 1
        vals = [(x * 3 + y) % (top + 1) for y in range(3) for x in range(5)]      # 5 x 3: rows end mid-byte
        rows = grid(5, 3, lambda x, y: (vals[y * 5 + x],))
        add(f"gray{bits}.png", 5, 3, 0, bits, rows, [v * 255 // top for v in vals], 255)

    # Adam7: 9 x 9 touches all seven passes (and partial blocks at the right and bottom edges).
    vals = [(x * 29 + y * 7) % 256 for y in range(9) for x in range(9)]
    rows = grid(9, 9, lambda x, y: (vals[y * 9 + x],))
    add("gray8-adam7.png", 9, 9, 0, 8, rows, vals, 255, interlace=True)
    vals16 = [(x * 7919 + y * 104729) % 65536 for y in range(9) for x in range(9)]
    rows = grid(9, 9, lambda x, y: (vals16[y * 9 + x],))
    add("gray16-adam7.png", 9, 9, 0, 16, rows, vals16, 65535, interlace=True)
    rows = grid(9, 9, lambda x, y: ((x * 40) % 256, (y * 30) % 256, (x * y * 3) % 256))
    add("rgb8-adam7.png", 9, 9, 2, 8, rows, flat(rows, 3), 255, interlace=True)
    vals2 = [(x + 2 * y) % 4 for y in range(9) for x in range(9)]
    rows = grid(9, 9, lambda x, y: (vals2[y * 9 + x],))
    add("gray2-adam7.png", 9, 9, 0, 2, rows, [v * 85 for v in vals2], 255, interlace=True)

    with open(os.path.join(HERE, "pil.json"), "w") as f:       # one file per line
        f.write('{"pillow": %s, "cases": {\n' % json.dumps(pillow_version))
        f.write(",\n".join(f" {json.dumps(k)}: {json.dumps(v, sort_keys=True)}" for k, v in sorted(cases.items())))
        f.write("\n}}\n")


if __name__ == "__main__":
    main()
