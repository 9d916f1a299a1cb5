// Checkpoint formats: a time level of f32 words encoded in fewer bytes at a save, decoded at a
// restore. The CPU twin is src/compression.rs; the two agree to the bit.
//
// Only integer operations on the words' bits, and one multiplication by a power of two (exact):
// no division, no float rounding mode, no subnormal that a GPU may flush. Each output word is
// written by one invocation: no atomics.

struct Params {
    // Words of the level (f32 values).
    len: u32,
    // Invocations per row of x-workgroups (a dispatch dimension holds at most 65535
    // workgroups; long levels spill into workgroup_id.y). For the int8 encoder, workgroups.
    row: u32,
    // Words of each of the level's independent parts (the shots of a batch; `len` for one):
    // no int8 block spans two parts, so each encodes as it does alone.
    segment: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// A level's words as bits, and its encoding. Encoders read `words` and write `encoded`;
// decoders the other way round.
@group(0) @binding(1) var<storage, read_write> words: array<u32>;
@group(0) @binding(2) var<storage, read_write> encoded: array<u32>;

override WORKGROUP_SIZE: u32;

// bfloat16 bits of an f32's bits, rounded to nearest, ties to even; a NaN stays a quiet NaN.
fn bf16_of(bits: u32) -> u32 {
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) {
        return ((bits >> 16u) | 0x0040u) & 0xFFFFu;
    }
    return ((bits + 0x7FFFu + ((bits >> 16u) & 1u)) >> 16u) & 0xFFFFu;
}

// Encoded word i holds words 2i (low half) and 2i + 1 (high half; 0 past the end).
@compute @workgroup_size(WORKGROUP_SIZE)
fn encode_bf16(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * params.row;
    let first = 2u * i;
    if (first >= params.len) {
        return;
    }
    var high = 0u;
    if (first + 1u < params.len) {
        high = bf16_of(words[first + 1u]);
    }
    encoded[i] = bf16_of(words[first]) | (high << 16u);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn decode_bf16(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * params.row;
    if (i >= params.len) {
        return;
    }
    words[i] = ((encoded[i / 2u] >> (16u * (i % 2u))) & 0xFFFFu) << 16u;
}

// Block-scaled 8-bit: blocks of BLOCK words, each encoded as BLOCK_WORDS u32: the exponent field
// of its largest magnitude, then a signed byte per word, four to a u32 (lowest byte first).
const BLOCK: u32 = 64u;
const BLOCK_WORDS: u32 = 17u;
// The exponent field of a block holding a NaN or an infinity: it decodes as NaN.
const NON_FINITE: u32 = 0xFFu;
// Blocks whose largest exponent field is below this are stored as zero.
const SMALLEST_FIELD: u32 = 7u;

var<workgroup> magnitude: array<u32, BLOCK>;
var<workgroup> bytes: array<u32, BLOCK>;

// round(x · 2^(6 − e)) for the word `bits` in a block of exponent field `field`, by integer
// arithmetic on the mantissa: ties to even, at most 127 in magnitude, subnormals zero. As a
// byte (two's complement).
fn quantize(bits: u32, field: u32) -> u32 {
    let own = (bits >> 23u) & 0xFFu;
    if (own == 0u) {
        return 0u;
    }
    let mantissa = (bits & 0x7FFFFFu) | 0x800000u;
    let shift = 17u + (field - own);
    var m = 0u;
    if (shift < 25u) {
        let whole = mantissa >> shift;
        let rest = mantissa & ((1u << shift) - 1u);
        let half = 1u << (shift - 1u);
        var up = 0u;
        if (rest > half || (rest == half && (whole & 1u) == 1u)) {
            up = 1u;
        }
        m = min(whole + up, 127u);
    }
    if ((bits >> 31u) == 1u) {
        return (256u - m) & 0xFFu;
    }
    return m;
}

// One workgroup a block, one invocation a word: the largest magnitude by a fixed tree of
// integer maxima (the same whatever the order), then each word's byte, then 16 invocations
// pack the bytes. Every invocation reaches every barrier (the early return is the whole
// workgroup's: a block past the end).
@compute @workgroup_size(64)
fn encode_int8(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let block = wid.x + wid.y * params.row;
    let per_part = (params.segment + BLOCK - 1u) / BLOCK;
    let blocks = (params.len / params.segment) * per_part;
    if (block >= blocks) {
        return;
    }
    let local = (block % per_part) * BLOCK + t;
    var bits = 0u;
    if (local < params.segment) {
        bits = words[(block / per_part) * params.segment + local];
    }
    magnitude[t] = bits & 0x7FFFFFFFu;
    workgroupBarrier();
    for (var s = BLOCK / 2u; s > 0u; s = s >> 1u) {
        if (t < s) {
            magnitude[t] = max(magnitude[t], magnitude[t + s]);
        }
        workgroupBarrier();
    }
    let field = magnitude[0] >> 23u;
    let stored = field >= SMALLEST_FIELD && field != NON_FINITE;
    var q = 0u;
    if (stored) {
        q = quantize(bits, field);
    }
    bytes[t] = q;
    workgroupBarrier();
    let out = block * BLOCK_WORDS;
    if (t == 0u) {
        var header = 0u;
        if (field == NON_FINITE || stored) {
            header = field;
        }
        encoded[out] = header;
    }
    if (t < BLOCK / 4u) {
        let b = 4u * t;
        encoded[out + 1u + t] =
            bytes[b] | (bytes[b + 1u] << 8u) | (bytes[b + 2u] << 16u) | (bytes[b + 3u] << 24u);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn decode_int8(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * params.row;
    if (i >= params.len) {
        return;
    }
    let per_part = (params.segment + BLOCK - 1u) / BLOCK;
    let local = i % params.segment;
    let block = ((i / params.segment) * per_part + local / BLOCK) * BLOCK_WORDS;
    let field = encoded[block];
    if (field == NON_FINITE) {
        words[i] = 0x7FC00000u;
        return;
    }
    if (field < SMALLEST_FIELD) {
        words[i] = 0u;
        return;
    }
    let at = local % BLOCK;
    let byte = (encoded[block + 1u + at / 4u] >> (8u * (at % 4u))) & 0xFFu;
    // The byte as a signed integer, then q · 2^(e − 6): exact (|q| ≤ 127, a normal result).
    let q = f32(i32(byte << 24u) >> 24u);
    words[i] = bitcast<u32>(q * bitcast<f32>((field - 6u) << 23u));
}
