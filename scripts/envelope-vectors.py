#!/usr/bin/python3
"""Envelope test vectors written by a msgpack implementation that is not JavaScript (Debian's python3-msgpack).

  /usr/bin/python3 scripts/envelope-vectors.py > test/fixtures/envelope-vectors.json
      writes the vectors: each a hex-encoded record value and either the envelope weir must decode it to or
      the coded error it must refuse it with (test/envelope/vectors.test.ts checks both, and that this file
      still writes exactly the committed vectors).
  /usr/bin/python3 scripts/envelope-vectors.py decode
      reads hex-encoded envelopes (one a line) on stdin and writes each decoded with python3-msgpack as one JSON
      line (bin values as {"$bin": hex}), so a test can check that weir's encoder output reads in Python.

Run with Debian's /usr/bin/python3 (apt-get install -y python3-msgpack); docs/envelope.md is the spec.
Integers take the encoding Python's msgpack picks (the smallest: fixint, uint8-64, int8-64) unless a vector
forces one: msgpack.packb has no way to choose, so `Int` writes the chosen format with struct, exactly as the
msgpack spec lays it out, and every other byte comes from msgpack.packb.
"""
import json
import math
import struct
import sys

import msgpack

CREATED_AT = 1764633600000  # 2025-12-02T00:00:00Z, above 32 bits: Python writes it as uint64
DEADLINE = CREATED_AT + 30000
MAX_SAFE = 2**53 - 1


class Int:
    """An integer (or float) value written in one chosen msgpack format."""

    FORMATS = {
        'positive fixint': lambda v: struct.pack('>B', v) if 0 <= v <= 0x7F else None,
        'negative fixint': lambda v: struct.pack('>b', v) if -32 <= v < 0 else None,
        'uint8': lambda v: b'\xcc' + struct.pack('>B', v),
        'uint16': lambda v: b'\xcd' + struct.pack('>H', v),
        'uint32': lambda v: b'\xce' + struct.pack('>I', v),
        'uint64': lambda v: b'\xcf' + struct.pack('>Q', v),
        'int8': lambda v: b'\xd0' + struct.pack('>b', v),
        'int16': lambda v: b'\xd1' + struct.pack('>h', v),
        'int32': lambda v: b'\xd2' + struct.pack('>i', v),
        'int64': lambda v: b'\xd3' + struct.pack('>q', v),
        'float32': lambda v: b'\xca' + struct.pack('>f', v),
        'float64': lambda v: b'\xcb' + struct.pack('>d', v),
    }

    def __init__(self, value, fmt):
        self.value = value
        self.fmt = fmt
        self.bytes = Int.FORMATS[fmt](value)
        if self.bytes is None:
            raise ValueError(f'{value} does not fit {fmt}')


def pack(value):
    """msgpack bytes of value; dicts are written entry by entry so an Int inside keeps its format."""
    if isinstance(value, Int):
        return value.bytes
    if isinstance(value, dict):
        n = len(value)
        head = bytes([0x80 | n]) if n < 16 else b'\xde' + struct.pack('>H', n)
        return head + b''.join(msgpack.packb(k) + pack(v) for k, v in value.items())
    if isinstance(value, list):
        n = len(value)
        head = bytes([0x90 | n]) if n < 16 else b'\xdc' + struct.pack('>H', n)
        return head + b''.join(pack(v) for v in value)
    return msgpack.packb(value, use_bin_type=True)


def plain(value):
    """The value a JSON reader compares with: Int unwrapped, bytes as {"$bin": hex}."""
    if isinstance(value, Int):
        return value.value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return {'$bin': bytes(value).hex()}
    return value


OPTIONAL = ('clientSessionId', 'topicAlias', 'status', 'deadline', 'retry', 'trace', 'actor', 'payloadRef')


def expected(document):
    """The envelope weir decodes document to: without v, optional fields sent as nil left out."""
    return {k: v for k, v in plain(document).items() if k != 'v' and not (k in OPTIONAL and v is None)}


def command(**overrides):
    """A command as a Python client writes it from docs/envelope.md alone."""
    document = {
        'v': 1,
        'id': 'cmd-1',
        'requestId': 'cmd-1',
        'clientSessionId': 'session-1',
        'kind': 'command',
        'topicAlias': 'orders',
        'contextPath': 'orders',
        'alias': 'place',
        'payload': {'sku': 'sku-1', 'qty': 2, 'price': 12.5, 'big': 2**40, 'note': 'ünïcødé', 'gift': False, 'tags': ['a'], 'coupon': None, 'blob': b'\x00\x01\xff'},
        'createdAt': CREATED_AT,
        'deadline': DEADLINE,
        'breadcrumbs': [],
        'retry': {'outOfOrder': False, 'count': 0},
        'trace': {'traceparent': '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'},
        'actor': {'sub': 'user-1', 'roles': ['buyer']},
    }
    for key, value in overrides.items():
        if value is DROP:
            del document[key]
        else:
            document[key] = value
    return document


DROP = object()


def result_with_breadcrumb(at):
    return command(
        id='res-1', kind='result', status='ok', payload={'total': 25}, deadline=DROP, actor=DROP, retry=DROP,
        breadcrumbs=[{'id': 'cmd-1', 'kind': 'command', 'contextPath': 'orders', 'alias': 'place', 'at': at}],
    )


def vectors():
    out = []

    def ok(name, document, raw=None):
        out.append({'name': name, 'hex': (raw if raw is not None else pack(document)).hex(), 'envelope': expected(document)})

    def refused(name, document, code, field, raw=None):
        out.append({'name': name, 'hex': (raw if raw is not None else pack(document)).hex(), 'error': {'code': code, 'field': field}})

    # What Python's msgpack writes on its own: createdAt/deadline and payload.big as uint64.
    natural = command()
    raw = msgpack.packb(natural, use_bin_type=True)
    assert b'\xcf' + struct.pack('>Q', CREATED_AT) in raw
    ok('python msgpack.packb, createdAt and deadline as uint64', natural, raw)
    ok('minimal event: required fields only', {
        'v': 1, 'id': 'evt-1', 'requestId': 'cmd-1', 'kind': 'event', 'contextPath': '', 'alias': 'placed',
        'payload': None, 'createdAt': 0, 'breadcrumbs': [],
    })
    ok('optional fields sent as nil', command(clientSessionId=None, topicAlias=None, deadline=None, retry=None, trace=None, actor=None))
    ok('result with a breadcrumb', result_with_breadcrumb(CREATED_AT - 5))
    ref = {'store': 's3', 'key': 'payloads/orders/cmd-1', 'size': 25 * 2**20, 'sha256': 'ab' * 32, 'contentType': 'application/msgpack'}
    ok('payload by reference (claim check)', command(payload=None, payloadRef=ref))
    ok('payload by reference, size as uint64', command(payload=None, payloadRef={**ref, 'size': Int(5, 'uint64')}))

    # Every msgpack encoding of an integer, in every integer field.
    samples = {
        'positive fixint': 5, 'uint8': 200, 'uint16': 60000, 'uint32': 4000000000, 'uint64': CREATED_AT,
        'int8': 100, 'int16': 30000, 'int32': 2000000000, 'int64': CREATED_AT,
        'float32': 16777216.0, 'float64': float(CREATED_AT),
    }
    for fmt, value in samples.items():
        ok(f'createdAt as {fmt}', command(createdAt=Int(value, fmt), deadline=DROP))
        ok(f'deadline as {fmt}', command(deadline=Int(value, fmt)))
        ok(f'retry.count as {fmt}', command(retry={'outOfOrder': True, 'count': Int(value, fmt)}))
        ok(f'breadcrumbs[].at as {fmt}', result_with_breadcrumb(Int(value, fmt)))
    for fmt in ('uint8', 'uint16', 'uint32', 'uint64', 'int8', 'int16', 'int32', 'int64', 'float32', 'float64'):
        ok(f'v as {fmt}', command(v=Int(1.0 if fmt.startswith('float') else 1, fmt)))
    ok('createdAt 0 as int64', command(createdAt=Int(0, 'int64'), deadline=DROP))
    ok('deadline 2^53-1 as uint64 (largest safe integer)', command(deadline=Int(MAX_SAFE, 'uint64')))
    ok('deadline 2^53-1 as int64', command(deadline=Int(MAX_SAFE, 'int64')))
    ok('deadline 2^53-1 as float64', command(deadline=Int(float(MAX_SAFE), 'float64')))

    # Refused: not integral, negative, beyond 2^53-1, not a number.
    invalid = 'WEIR_ERR_ENVELOPE_INVALID'
    for field in ('createdAt', 'deadline'):
        refused(f'{field} float64 not integral', command(**{field: Int(CREATED_AT + 0.5, 'float64')}), invalid, field)
        refused(f'{field} float32 not integral', command(**{field: Int(1.5, 'float32')}), invalid, field)
        refused(f'{field} negative fixint', command(**{field: Int(-1, 'negative fixint')}), invalid, field)
        refused(f'{field} negative int8', command(**{field: Int(-100, 'int8')}), invalid, field)
        refused(f'{field} negative int64', command(**{field: Int(-CREATED_AT, 'int64')}), invalid, field)
        refused(f'{field} negative float64', command(**{field: Int(-1.0, 'float64')}), invalid, field)
        refused(f'{field} 2^53 as uint64 (too large)', command(**{field: Int(2**53, 'uint64')}), invalid, field)
        refused(f'{field} 2^64-1 as uint64 (too large)', command(**{field: Int(2**64 - 1, 'uint64')}), invalid, field)
        refused(f'{field} 2^63-1 as int64 (too large)', command(**{field: Int(2**63 - 1, 'int64')}), invalid, field)
        refused(f'{field} 2^53 as float64 (too large)', command(**{field: Int(2.0**53, 'float64')}), invalid, field)
        refused(f'{field} 1e300 as float64 (too large)', command(**{field: Int(1e300, 'float64')}), invalid, field)
        refused(f'{field} NaN', command(**{field: Int(math.nan, 'float64')}), invalid, field)
        refused(f'{field} infinity', command(**{field: Int(math.inf, 'float64')}), invalid, field)
        refused(f'{field} as a string', command(**{field: str(CREATED_AT)}), invalid, field)
        refused(f'{field} as true', command(**{field: True}), invalid, field)
    refused('retry.count negative', command(retry={'outOfOrder': True, 'count': Int(-1, 'negative fixint')}), invalid, 'retry')
    refused('retry.count not integral', command(retry={'outOfOrder': True, 'count': Int(0.5, 'float64')}), invalid, 'retry')
    refused('breadcrumbs[].at negative', result_with_breadcrumb(Int(-5, 'int64')), invalid, 'breadcrumbs')
    refused('breadcrumbs[].at too large', result_with_breadcrumb(Int(2**60, 'uint64')), invalid, 'breadcrumbs')
    refused('createdAt missing', command(createdAt=DROP), invalid, 'createdAt')
    refused('createdAt nil', command(createdAt=None), invalid, 'createdAt')
    refused('id as bin instead of str', command(id=b'cmd-1'), invalid, 'id')
    refused('actor without roles', command(actor={'sub': 'user-1'}), invalid, 'actor')
    refused('actor roles not strings', command(actor={'sub': 'user-1', 'roles': [1]}), invalid, 'actor')
    refused('payloadRef with a payload', command(payloadRef=ref), invalid, 'payloadRef')
    refused('payloadRef sha256 upper case', command(payload=None, payloadRef={**ref, 'sha256': 'AB' * 32}), invalid, 'payloadRef')
    refused('payloadRef without a key', command(payload=None, payloadRef={k: v for k, v in ref.items() if k != 'key'}), invalid, 'payloadRef')
    refused('payloadRef size negative', command(payload=None, payloadRef={**ref, 'size': Int(-1, 'negative fixint')}), invalid, 'payloadRef')
    refused('status on a command', command(status='ok'), invalid, 'status')
    refused('v missing', command(v=DROP), invalid, 'v')
    refused('v 1.5', command(v=Int(1.5, 'float64')), invalid, 'v')
    refused('v 2 (newer schema)', command(v=2), 'WEIR_ERR_ENVELOPE_VERSION', 'v')
    refused('an array, not a map', None, invalid, None, msgpack.packb([1, 2]))
    refused('trailing bytes after the map', None, 'WEIR_ERR_ENVELOPE_DECODE', None, pack(command()) + b'\xc0')
    return out


def decode():
    for line in sys.stdin:
        line = line.strip()
        if line:
            document = msgpack.unpackb(bytes.fromhex(line), raw=False, strict_map_key=True)
            print(json.dumps(plain(document), ensure_ascii=False, sort_keys=True))


def main():
    if sys.argv[1:] == ['decode']:
        decode()
    elif sys.argv[1:] == []:
        json.dump({'writer': 'python3-msgpack', 'vectors': vectors()}, sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write('\n')
    else:
        sys.exit(f'usage: {sys.argv[0]} [decode]')


if __name__ == '__main__':
    main()
