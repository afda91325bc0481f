#!/usr/bin/env python3
"""Write the fuzzer's seed corpus (tests/fuzz/corpus/): one small script of
heap operations per scenario, in the input format tests/fuzz/fuzz_heap.c
decodes. Deterministic; rerun after changing that format.
Usage: python3 tools/fuzz-seeds.py [outdir]"""
import os
import sys

# Opcode byte ranges (weights in step()) and each operation's argument bytes.
OPS = {
    'alloc': (0, 4), 'free': (18, 1), 'realloc': (32, 4), 'aligned': (42, 5),
    'calloc': (47, 5), 'usable': (51, 1), 'fill': (57, 3), 'drain': (58, 1),
    'misuse': (59, 3), 'trim': (62, 0), 'check': (63, 0),
    # step_cpu (opcodes 0xf0 and up): 'switch' is 0xf0 + CPU (0xf4: none)
    'switch': (0xf0, 0), 'trimcpu': (0xf8, 0), 'dead': (0xfa, 1), 'ipi': (0xfc, 0),
    'twice': (0xfd, 2), 'quiesce': (0xff, 0),
    # object caches (opcodes 0xe0-0xef, the low nibble picks the operation)
    'cache': (0xe0, 2),
}


class Rng:
    def __init__(self, seed):
        self.x = seed * 0x9E3779B97F4A7C15 % (1 << 64) or 1

    def byte(self):
        x = self.x
        x ^= (x << 13) % (1 << 64)
        x ^= x >> 7
        x ^= (x << 17) % (1 << 64)
        self.x = x
        return x >> 24 & 0xFF


def op(rng, name, size_kind=None, first=None):
    code, nargs = OPS[name]
    args = [rng.byte() for _ in range(nargs)]
    if first is not None and nargs:
        args[0] = first
    if size_kind is not None:  # the size's selector byte: kind in its top 3 bits
        at = {'alloc': 1, 'realloc': 1, 'aligned': 2, 'calloc': 2, 'fill': 0}[name]
        args[at] = size_kind << 5 | (args[at] & 31)
    return bytes([code]) + bytes(args)


def region(rng, good, kind=0):
    if good:
        return bytes([54, 0x40 | (rng.byte() & 0x80), rng.byte(), rng.byte(), rng.byte()])
    body = bytes([54, kind, rng.byte(), rng.byte()])
    return body + (bytes([rng.byte(), rng.byte()]) if kind == 4 else b'')


def script(seed, header, mix, n, size_kinds=(0, 1, 2, 3)):
    rng = Rng(seed)
    out = bytearray(header)
    names = [k for k, w in mix for _ in range(w)]
    for _ in range(n):
        name = names[rng.byte() % len(names)]
        if name == 'region+':
            out += region(rng, True)
        elif name.startswith('region-'):
            out += region(rng, False, int(name[-1]))
        elif name in ('alloc', 'realloc', 'aligned', 'calloc', 'fill'):
            out += op(rng, name, size_kinds[rng.byte() % len(size_kinds)])
        elif name.startswith('misuse'):
            out += op(rng, 'misuse', first=int(name[-1]))
        elif name == 'switch':
            out += bytes([OPS['switch'][0] + rng.byte() % 5])
        elif name == 'cache':
            out += bytes([OPS['cache'][0] + rng.byte() % 16, rng.byte(), rng.byte()])
        elif name in ('dead', 'dead-bad'):  # the argument's top bit asks for a bad number
            out += op(rng, 'dead', first=rng.byte() & 0x7f | (0x80 if name == 'dead-bad' else 0))
        else:
            out += op(rng, name)
    return bytes(out)


CHURN = [('alloc', 6), ('free', 5), ('realloc', 3), ('aligned', 1), ('calloc', 1), ('usable', 1)]
ARENAS = {'tiny': b'\x01\x00\x01', '4k': b'\x01\x04\xf0', '64k': b'\x01\x08\xff',
          '256k': b'\x01\x0a\xff', '1m': b'\x01\x0c\xff'}
# Byte 0 with bit 7 set: per-CPU mode, on CPU (bits 4-6) at kheap_init, or
# on none (6, 7), so that the first locked allocation on a CPU turns it on.
PCPU = 0x81
PCPU_LATE = 0xf1
PCPU_MIX = [('switch', 3), ('trimcpu', 1), ('dead', 1), ('twice', 1)]


def scenarios():
    for i, (name, hdr) in enumerate(ARENAS.items()):
        yield 'churn-' + name, script(10 + i, hdr, CHURN, 120)
        yield 'exhaust-' + name, script(20 + i, hdr, [('fill', 2), ('drain', 1), ('alloc', 2),
                                                      ('free', 1), ('trim', 1)], 60, (0, 2, 3, 4))
    yield 'realloc', script(30, ARENAS['64k'], [('realloc', 6), ('alloc', 1), ('free', 1)], 150,
                            (0, 2, 3, 4, 5))
    yield 'aligned', script(31, ARENAS['64k'], [('aligned', 5), ('realloc', 2), ('free', 2)], 120)
    yield 'calloc', script(32, ARENAS['64k'], [('calloc', 5), ('free', 2), ('realloc', 1)], 120)
    yield 'edge-sizes', script(33, ARENAS['4k'], CHURN, 120, (6, 7))
    yield 'largest-free', script(34, ARENAS['256k'], [('alloc', 3), ('free', 2), ('aligned', 1)],
                                 80, (6,))
    yield 'classes', script(35, ARENAS['256k'], CHURN + [('trim', 1)], 200, (0, 1, 2))
    yield 'regions', script(36, ARENAS['4k'], [('region+', 2), ('alloc', 4), ('free', 2),
                                               ('realloc', 1)], 100)
    yield 'regions-full', script(37, ARENAS['tiny'], [('region+', 1)], 10) + \
        script(38, b'', CHURN, 80)
    for k in range(5):
        yield 'region-bad-%d' % k, script(40 + k, ARENAS['4k'], [('region-%d' % k, 1),
                                                                 ('region+', 1), ('alloc', 2),
                                                                 ('free', 1)], 30)
    for k in range(9):
        yield 'misuse-%d' % k, script(50 + k, ARENAS['64k'], [('misuse%d' % k, 2), ('alloc', 3),
                                                              ('free', 2), ('realloc', 1)], 60)
    for k in range(5):
        yield 'bad-init-%d' % k, bytes([k << 4, 0x04, 0x20]) + script(60 + k, b'', CHURN, 20)
    yield 'check-trim', script(70, ARENAS['64k'], CHURN + [('check', 1), ('trim', 1)], 100)
    # Per-CPU lists hold blocks only where the heap is large enough for a
    # class to get a limit (kheap.c: cpu_limits): the 1 MiB arena, small sizes.
    big = bytes([PCPU]) + ARENAS['1m'][1:]
    yield 'pcpu-churn', script(80, big, CHURN + PCPU_MIX + [('dead-bad', 1), ('check', 1),
                                                           ('trim', 1)], 120, (2, 2, 0))
    yield 'pcpu-late', script(81, bytes([PCPU_LATE]) + ARENAS['1m'][1:],
                              CHURN + [('switch', 2), ('trim', 1)], 80, (2, 2, 0))
    ipi_on = bytes([OPS['ipi'][0]])
    yield 'pcpu-oom-ipi', script(82, big + ipi_on, [('alloc', 6), ('free', 3), ('switch', 3),
                                                    ('fill', 1), ('drain', 1), ('trim', 1)],
                                 80, (2, 2, 2, 6))
    yield 'pcpu-oom', script(83, big, [('alloc', 6), ('free', 3), ('switch', 3), ('fill', 1),
                                       ('drain', 1), ('trim', 1), ('trimcpu', 1)], 80,
                             (2, 2, 2, 6))
    yield 'pcpu-twice', script(85, big, [('alloc', 4), ('free', 2), ('switch', 2), ('twice', 2),
                                         ('misuse0', 1), ('misuse1', 1), ('misuse2', 1),
                                         ('misuse3', 1), ('misuse4', 1)], 100, (2, 2, 0))
    yield 'pcpu-regions', script(86, big, [('region+', 1), ('alloc', 4), ('free', 3),
                                           ('switch', 2), ('realloc', 1)], 80, (2, 2, 0))
    yield 'objcache', script(87, ARENAS['256k'], [('cache', 6), ('alloc', 2), ('free', 2),
                                                  ('realloc', 1), ('misuse0', 1)], 150, (0, 1, 2))
    yield 'pcpu-objcache', script(88, big, [('cache', 6), ('alloc', 2), ('free', 2), ('switch', 2),
                                            ('trimcpu', 1), ('dead', 1), ('quiesce', 1)], 150,
                                  (2, 2, 0))
    yield 'objcache-oom', script(89, ARENAS['64k'], [('cache', 6), ('fill', 1), ('drain', 1),
                                                     ('alloc', 2), ('free', 1)], 120, (0, 2, 3))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else 'tests/fuzz/corpus'
    os.makedirs(out, exist_ok=True)
    for name, data in scenarios():
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)


if __name__ == '__main__':
    main()
