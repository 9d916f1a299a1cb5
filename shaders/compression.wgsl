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

// Invocation i writes the two words that encoded word i holds.
@compute @workgroup_size(WORKGROUP_SIZE)
fn decode_bf16(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * params.row;
    let first = 2u * i;
    if (first >= params.len) {
        return;
    }
    let pair = encoded[i];
    words[first] = pair << 16u;
    if (first + 1u < params.len) {
        words[first + 1u] = pair & 0xFFFF0000u;
    }
}

// Block-scaled 8-bit: blocks of BLOCK words, each encoded as BLOCK_WORDS u32: the exponent field
// of its largest magnitude, then a signed byte per word, four to a u32 (lowest byte first).
const BLOCK: u32 = 64u;
const BLOCK_WORDS: u32 = 17u;
// The exponent field of a block holding a NaN or an infinity: it decodes as NaN.
const NON_FINITE: u32 = 0xFFu;
// Blocks whose largest exponent field is below this are stored as zero.
const SMALLEST_FIELD: u32 = 7u;

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

// One invocation a block: its largest magnitude (an integer maximum), then its bytes, packed
// four to a word. A block's 256 bytes are read twice, the second time from cache. No
// workgroup memory or barriers: software adapters run those slowly, and a GPU needs neither.
@compute @workgroup_size(WORKGROUP_SIZE)
fn encode_int8(@builtin(global_invocation_id) gid: vec3<u32>) {
    let block = gid.x + gid.y * params.row;
    let per_part = (params.segment + BLOCK - 1u) / BLOCK;
    let blocks = (params.len / params.segment) * per_part;
    if (block >= blocks) {
        return;
    }
    let start = (block % per_part) * BLOCK;
    let first = (block / per_part) * params.segment + start;
    let count = min(BLOCK, params.segment - start);
    var largest = 0u;
    for (var i = 0u; i < count; i++) {
        largest = max(largest, words[first + i] & 0x7FFFFFFFu);
    }
    let field = largest >> 23u;
    let stored = field >= SMALLEST_FIELD && field != NON_FINITE;
    let out = block * BLOCK_WORDS;
    var header = 0u;
    if (field == NON_FINITE || stored) {
        header = field;
    }
    encoded[out] = header;
    for (var w = 0u; w < BLOCK / 4u; w++) {
        var packed = 0u;
        for (var j = 0u; j < 4u; j++) {
            let i = 4u * w + j;
            if (stored && i < count) {
                packed = packed | (quantize(words[first + i], field) << (8u * j));
            }
        }
        encoded[out + 1u + w] = packed;
    }
}

// Invocation q writes the (up to) four words of data word q % 16 of block q / 16.
@compute @workgroup_size(WORKGROUP_SIZE)
fn decode_int8(@builtin(global_invocation_id) gid: vec3<u32>) {
    let q = gid.x + gid.y * params.row;
    let per_part = (params.segment + BLOCK - 1u) / BLOCK;
    let block = q / (BLOCK / 4u);
    if (block >= (params.len / params.segment) * per_part) {
        return;
    }
    let local = (block % per_part) * BLOCK + 4u * (q % (BLOCK / 4u));
    let first = (block / per_part) * params.segment + local;
    let field = encoded[block * BLOCK_WORDS];
    let packed = encoded[block * BLOCK_WORDS + 1u + q % (BLOCK / 4u)];
    // q · 2^(e − 6) for each byte q: exact (|q| ≤ 127, a normal result).
    let scale = bitcast<f32>((max(field, SMALLEST_FIELD) - 6u) << 23u);
    for (var j = 0u; j < 4u; j++) {
        if (local + j >= params.segment) {
            return;
        }
        var value = 0u;
        if (field == NON_FINITE) {
            value = 0x7FC00000u;
        } else if (field >= SMALLEST_FIELD) {
            let byte = (packed >> (8u * j)) & 0xFFu;
            value = bitcast<u32>(f32(i32(byte << 24u) >> 24u) * scale);
        }
        words[first + j] = value;
    }
}
