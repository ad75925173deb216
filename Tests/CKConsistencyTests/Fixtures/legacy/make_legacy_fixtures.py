# Builds the legacy-checkpoint fixtures: the exact header of a checkpoint written by cmkit before the
# methods-as-types change, and a data block filled by a formula (so the fixture stays a few KB).
import json, struct, sys, os
def fill_value(i, j, name):
    h = (j * 2654435761 + (i + 1) * 97531) % 2**32
    k = (h >> 7) % 2001 - 1000
    if name.endswith('latent.std'): return 0.5 + abs(k) * 2.0**-11
    if '.v.' in name and (name.startswith('adam.') or name.startswith('radam.')): return abs(k) * 2.0**-20
    return k * 2.0**-14
def build(header_bytes):
    h = json.loads(header_bytes)
    entries = sorted(((v['data_offsets'][0], k, v) for k, v in h.items() if k != '__metadata__'))
    total = max(v['data_offsets'][1] for _, _, v in entries)
    data = bytearray(total)
    for i, (begin, name, v) in enumerate(entries):
        count = (v['data_offsets'][1] - begin) // 4
        struct.pack_into('<%df' % count, data, begin, *[fill_value(i, j, name) for j in range(count)])
    return struct.pack('<Q', len(header_bytes)) + header_bytes + bytes(data)
if __name__ == '__main__':
    src, header_out, ckpt_out = sys.argv[1:4]
    b = open(src, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    open(header_out, 'wb').write(b[8:8 + n])
    open(ckpt_out, 'wb').write(build(b[8:8 + n]))
