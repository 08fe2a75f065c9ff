// MessagePack (https://github.com/msgpack/msgpack/blob/master/spec.md) for the room socket.
//
// Written for this project (no third-party code): nil, booleans, integers to 64 bits,
// float 32/64, str, bin, array, map and ext. Integers beyond ±2^53 decode as BigInt; a
// map whose keys are all strings decodes as a plain object, any other map as a Map;
// ext values (the timestamp ext too) decode as `Ext`. Encoding picks the smallest format;
// non-integral numbers are float64, object properties that are `undefined` are left out.

export const DEPTH_MAX = 64; // nesting deeper than this is refused both ways

export class DecodeError extends Error {
  constructor(message) {
    super(message);
    this.name = "DecodeError";
  }
}

/** An ext value: `type` is -128..127, `data` a Uint8Array. */
export class Ext {
  constructor(type, data) {
    this.type = type;
    this.data = data;
  }
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

// -- encoding ------------------------------------------------------------------------

class Writer {
  constructor() {
    this.bytes = new Uint8Array(256);
    this.view = new DataView(this.bytes.buffer);
    this.pos = 0;
  }

  reserve(n) {
    if (this.pos + n <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < this.pos + n) size *= 2;
    const bigger = new Uint8Array(size);
    bigger.set(this.bytes.subarray(0, this.pos));
    this.bytes = bigger;
    this.view = new DataView(bigger.buffer);
  }

  u8(v) {
    this.reserve(1);
    this.view.setUint8(this.pos, v);
    this.pos += 1;
  }

  u16(v) {
    this.reserve(2);
    this.view.setUint16(this.pos, v);
    this.pos += 2;
  }

  u32(v) {
    this.reserve(4);
    this.view.setUint32(this.pos, v);
    this.pos += 4;
  }

  raw(bytes) {
    this.reserve(bytes.length);
    this.bytes.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  result() {
    return this.bytes.slice(0, this.pos);
  }
}

function writeTyped(w, tag, size, setter, value) {
  w.reserve(1 + size);
  w.view.setUint8(w.pos, tag);
  w.view[setter](w.pos + 1, value);
  w.pos += 1 + size;
}

function writeInt(w, n) {
  if (n >= 0) {
    if (n < 0x80) w.u8(n);
    else if (n < 0x100) writeTyped(w, 0xcc, 1, "setUint8", n);
    else if (n < 0x10000) writeTyped(w, 0xcd, 2, "setUint16", n);
    else if (n < 0x100000000) writeTyped(w, 0xce, 4, "setUint32", n);
    else writeTyped(w, 0xcf, 8, "setBigUint64", BigInt(n));
  } else if (n >= -0x20) w.u8(n & 0xff);
  else if (n >= -0x80) writeTyped(w, 0xd0, 1, "setInt8", n);
  else if (n >= -0x8000) writeTyped(w, 0xd1, 2, "setInt16", n);
  else if (n >= -0x80000000) writeTyped(w, 0xd2, 4, "setInt32", n);
  else writeTyped(w, 0xd3, 8, "setBigInt64", BigInt(n));
}

function writeBigInt(w, n) {
  if (n >= -(2n ** 63n) && n < 0n) writeTyped(w, 0xd3, 8, "setBigInt64", n);
  else if (n >= 0n && n < 2n ** 64n) writeTyped(w, 0xcf, 8, "setBigUint64", n);
  else throw new RangeError("a BigInt beyond 64 bits has no msgpack form");
}

function writeLength(w, n, fix, fixMax, tag8, tag16, tag32) {
  if (n <= fixMax && fix !== null) w.u8(fix | n);
  else if (n < 0x100 && tag8 !== null) writeTyped(w, tag8, 1, "setUint8", n);
  else if (n < 0x10000) writeTyped(w, tag16, 2, "setUint16", n);
  else if (n < 0x100000000) writeTyped(w, tag32, 4, "setUint32", n);
  else throw new RangeError("longer than msgpack allows (2^32 - 1)");
}

function writeString(w, s) {
  const bytes = utf8Encoder.encode(s);
  writeLength(w, bytes.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
  w.raw(bytes);
}

function writeBin(w, bytes) {
  writeLength(w, bytes.length, null, -1, 0xc4, 0xc5, 0xc6);
  w.raw(bytes);
}

function writeExt(w, ext) {
  const n = ext.data.length;
  const fixed = { 1: 0xd4, 2: 0xd5, 4: 0xd6, 8: 0xd7, 16: 0xd8 }[n];
  if (fixed !== undefined) w.u8(fixed);
  else writeLength(w, n, null, -1, 0xc7, 0xc8, 0xc9);
  w.reserve(1);
  w.view.setInt8(w.pos, ext.type);
  w.pos += 1;
  w.raw(ext.data);
}

function asBytes(value) {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  return null;
}

function writeValue(w, value, depth) {
  if (depth > DEPTH_MAX) throw new RangeError(`nested deeper than ${DEPTH_MAX}`);
  if (value === null || value === undefined) return w.u8(0xc0);
  switch (typeof value) {
    case "boolean":
      return w.u8(value ? 0xc3 : 0xc2);
    case "number":
      if (Number.isSafeInteger(value) && !Object.is(value, -0)) return writeInt(w, value);
      return writeTyped(w, 0xcb, 8, "setFloat64", value);
    case "bigint":
      return writeBigInt(w, value);
    case "string":
      return writeString(w, value);
    case "object":
      break;
    default:
      throw new TypeError(`cannot encode a ${typeof value} as msgpack`);
  }
  const bytes = asBytes(value);
  if (bytes) return writeBin(w, bytes);
  if (value instanceof Ext) return writeExt(w, value);
  if (Array.isArray(value)) {
    writeLength(w, value.length, 0x90, 15, null, 0xdc, 0xdd);
    for (const item of value) writeValue(w, item, depth + 1);
    return undefined;
  }
  const entries =
    value instanceof Map
      ? [...value.entries()]
      : Object.entries(value).filter(([, v]) => v !== undefined);
  writeLength(w, entries.length, 0x80, 15, null, 0xde, 0xdf);
  for (const [k, v] of entries) {
    writeValue(w, k, depth + 1);
    writeValue(w, v, depth + 1);
  }
  return undefined;
}

/** Encode `value` as one msgpack value; returns a Uint8Array. */
export function encode(value) {
  const w = new Writer();
  writeValue(w, value, 0);
  return w.result();
}

// -- decoding ------------------------------------------------------------------------

class Reader {
  constructor(bytes) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
  }

  need(n) {
    if (this.pos + n > this.bytes.length) {
      throw new DecodeError(`truncated: needs ${n} more bytes at offset ${this.pos}`);
    }
  }

  read(getter, size) {
    this.need(size);
    const value = this.view[getter](this.pos);
    this.pos += size;
    return value;
  }

  take(n) {
    this.need(n);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

function int64(big) {
  const n = Number(big);
  return Number.isSafeInteger(n) ? n : big;
}

function readString(r, n) {
  try {
    return utf8Decoder.decode(r.take(n));
  } catch (error) {
    if (error instanceof DecodeError) throw error;
    throw new DecodeError("a str is not valid UTF-8");
  }
}

function readArray(r, n, depth) {
  if (n > r.bytes.length - r.pos) throw new DecodeError("array longer than the message");
  const out = new Array(n);
  for (let i = 0; i < n; i += 1) out[i] = readValue(r, depth + 1);
  return out;
}

function readMap(r, n, depth) {
  if (n * 2 > r.bytes.length - r.pos) throw new DecodeError("map longer than the message");
  const entries = [];
  let stringKeys = true;
  for (let i = 0; i < n; i += 1) {
    const key = readValue(r, depth + 1);
    if (typeof key !== "string") stringKeys = false;
    entries.push([key, readValue(r, depth + 1)]);
  }
  if (!stringKeys) return new Map(entries);
  const out = {};
  for (const [key, value] of entries) {
    // Never let a "__proto__" key change the object's prototype.
    Object.defineProperty(out, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

function readExt(r, n) {
  const type = r.read("getInt8", 1);
  return new Ext(type, r.take(n).slice());
}

function readValue(r, depth) {
  if (depth > DEPTH_MAX) throw new DecodeError(`nested deeper than ${DEPTH_MAX}`);
  const tag = r.read("getUint8", 1);
  if (tag < 0x80) return tag; // positive fixint
  if (tag >= 0xe0) return tag - 0x100; // negative fixint
  if (tag < 0x90) return readMap(r, tag & 0x0f, depth);
  if (tag < 0xa0) return readArray(r, tag & 0x0f, depth);
  if (tag < 0xc0) return readString(r, tag & 0x1f);
  switch (tag) {
    case 0xc0:
      return null;
    case 0xc2:
      return false;
    case 0xc3:
      return true;
    case 0xc4:
      return r.take(r.read("getUint8", 1)).slice();
    case 0xc5:
      return r.take(r.read("getUint16", 2)).slice();
    case 0xc6:
      return r.take(r.read("getUint32", 4)).slice();
    case 0xc7:
      return readExt(r, r.read("getUint8", 1));
    case 0xc8:
      return readExt(r, r.read("getUint16", 2));
    case 0xc9:
      return readExt(r, r.read("getUint32", 4));
    case 0xca:
      return r.read("getFloat32", 4);
    case 0xcb:
      return r.read("getFloat64", 8);
    case 0xcc:
      return r.read("getUint8", 1);
    case 0xcd:
      return r.read("getUint16", 2);
    case 0xce:
      return r.read("getUint32", 4);
    case 0xcf:
      return int64(r.read("getBigUint64", 8));
    case 0xd0:
      return r.read("getInt8", 1);
    case 0xd1:
      return r.read("getInt16", 2);
    case 0xd2:
      return r.read("getInt32", 4);
    case 0xd3:
      return int64(r.read("getBigInt64", 8));
    case 0xd4:
      return readExt(r, 1);
    case 0xd5:
      return readExt(r, 2);
    case 0xd6:
      return readExt(r, 4);
    case 0xd7:
      return readExt(r, 8);
    case 0xd8:
      return readExt(r, 16);
    case 0xd9:
      return readString(r, r.read("getUint8", 1));
    case 0xda:
      return readString(r, r.read("getUint16", 2));
    case 0xdb:
      return readString(r, r.read("getUint32", 4));
    case 0xdc:
      return readArray(r, r.read("getUint16", 2), depth);
    case 0xdd:
      return readArray(r, r.read("getUint32", 4), depth);
    case 0xde:
      return readMap(r, r.read("getUint16", 2), depth);
    case 0xdf:
      return readMap(r, r.read("getUint32", 4), depth);
    default:
      throw new DecodeError(`0x${tag.toString(16)} is not a msgpack type`); // 0xc1
  }
}

/** Decode exactly one msgpack value from an ArrayBuffer or a typed array. */
export function decode(data) {
  const bytes = asBytes(data);
  if (!bytes) throw new TypeError("decode takes an ArrayBuffer or a typed array");
  const r = new Reader(bytes);
  const value = readValue(r, 0);
  if (r.pos !== bytes.length) {
    throw new DecodeError(`${bytes.length - r.pos} bytes left after the value`);
  }
  return value;
}
