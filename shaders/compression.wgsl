// Checkpoint formats: a time level of f32 words encoded in fewer bytes at a save, decoded at a
// restore. The CPU twin is src/compression.rs; the two agree to the bit.
//
// Only integer operations on the words' bits, and one multiplication by a power of two (exact):
// no division, no float rounding mode, no subnormal that a GPU may flush. Each output word is
// written by one invocation: no atomics.
//
// Each invocation moves 16-byte vectors (`words4`, `encoded4`: the same buffers as `words` and
// `encoded`) where its words start on one: a software adapter pays per memory operation, not
// per byte, and a GPU coalesces either. Single words move at a level's or a part's ragged end,
// and for every int8 block of a part that does not start on a vector (the shots of a batch
// whose levels are not a multiple of 4 words long: a slower path).

struct Params {
    // Words of the level (f32 values).
    len: u32,
    // Invocations per row of x-workgroups (a dispatch dimension holds at most 65535
    // workgroups; long levels spill into workgroup_id.y).
    row: u32,
    // Words of each of the level's independent parts (the shots of a batch; `len` for one):
    // no int8 block spans two parts, so each encodes as it does alone.
    segment: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// A level's words as bits, and its encoding. Encoders read `words` and write `encoded`;
// decoders the other way round. Bindings 3 and 4 are the same two buffers seen as vectors
// (the host binds a 16-byte stand-in when a buffer is shorter than one vector; the kernels
// then never touch it).
@group(0) @binding(1) var<storage, read_write> words: array<u32>;
@group(0) @binding(2) var<storage, read_write> encoded: array<u32>;
@group(0) @binding(3) var<storage, read_write> words4: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read_write> encoded4: array<vec4<u32>>;

override WORKGROUP_SIZE: u32;

// bfloat16 bits of an f32's bits, rounded to nearest, ties to even; a NaN stays a quiet NaN.
fn bf16_of(bits: u32) -> u32 {
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) {
        return ((bits >> 16u) | 0x0040u) & 0xFFFFu;
    }
    return ((bits + 0x7FFFu + ((bits >> 16u) & 1u)) >> 16u) & 0xFFFFu;
}

fn bf16_pair(low: u32, high: u32) -> u32 {
    return bf16_of(low) | (bf16_of(high) << 16u);
}

// Encoded word i holds words 2i (low half) and 2i + 1 (high half; 0 past the end). Invocation i
// writes encoded words 4i to 4i + 3, from words 8i to 8i + 7.
@compute @workgroup_size(WORKGROUP_SIZE)
fn encode_bf16(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * params.row;
    let first = 8u * i;
    if (first >= params.len) {
        return;
    }
    if (first + 8u <= params.len) {
        let a = words4[2u * i];
        let b = words4[2u * i + 1u];
        encoded4[i] = vec4(bf16_pair(a.x, a.y), bf16_pair(a.z, a.w), bf16_pair(b.x, b.y),
                           bf16_pair(b.z, b.w));
        return;
    }
    for (var w = first; w < params.len; w += 2u) {
        var high = 0u;
        if (w + 1u < params.len) {
            high = bf16_of(words[w + 1u]);
        }
        encoded[w / 2u] = bf16_of(words[w]) | (high << 16u);
    }
}

// Invocation i writes words 8i to 8i + 7, from encoded words 4i to 4i + 3.
@compute @workgroup_size(WORKGROUP_SIZE)
fn decode_bf16(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * params.row;
    let first = 8u * i;
    if (first >= params.len) {
        return;
    }
    if (first + 8u <= params.len) {
        let e = encoded4[i];
        let high = vec4(0xFFFF0000u);
        words4[2u * i] = vec4(e.x << 16u, e.x & high.x, e.y << 16u, e.y & high.x);
        words4[2u * i + 1u] = vec4(e.z << 16u, e.z & high.x, e.w << 16u, e.w & high.x);
        return;
    }
    for (var w = first; w < params.len; w++) {
        words[w] = (encoded[w / 2u] << (16u * (1u - w % 2u))) & 0xFFFF0000u;
    }
}

// Block-scaled 8-bit: blocks of BLOCK words. An encoded level holds every block's bytes (16
// words a block, four bytes to a word, lowest byte first), then every block's exponent field
// (one word a block): each block's bytes start on a vector.
const BLOCK: u32 = 64u;
const BLOCK_VECTORS: u32 = 16u;
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

fn max4(v: vec4<u32>) -> u32 {
    let m = v & vec4(0x7FFFFFFFu);
    return max(max(m.x, m.y), max(m.z, m.w));
}

fn pack4(v: vec4<u32>, field: u32) -> u32 {
    return quantize(v.x, field) | (quantize(v.y, field) << 8u) | (quantize(v.z, field) << 16u)
        | (quantize(v.w, field) << 24u);
}

// Blocks of each part, and of the level.
fn blocks_per_part() -> u32 {
    return (params.segment + BLOCK - 1u) / BLOCK;
}

// One invocation a block: its largest magnitude (an integer maximum), then its bytes. A block's
// 256 bytes are read twice, the second time from cache. No workgroup memory or barriers:
// software adapters run those slowly, and a GPU needs neither. A whole block on a vector
// boundary moves as vectors; a part's ragged end word by word.
@compute @workgroup_size(WORKGROUP_SIZE)
fn encode_int8(@builtin(global_invocation_id) gid: vec3<u32>) {
    let block = gid.x + gid.y * params.row;
    let per_part = blocks_per_part();
    let blocks = (params.len / params.segment) * per_part;
    if (block >= blocks) {
        return;
    }
    let start = (block % per_part) * BLOCK;
    let first = (block / per_part) * params.segment + start;
    let count = min(BLOCK, params.segment - start);
    let whole = count == BLOCK && first % 4u == 0u;
    var largest = 0u;
    if (whole) {
        for (var v = 0u; v < BLOCK_VECTORS; v++) {
            largest = max(largest, max4(words4[first / 4u + v]));
        }
    } else {
        for (var i = 0u; i < count; i++) {
            largest = max(largest, words[first + i] & 0x7FFFFFFFu);
        }
    }
    let field = largest >> 23u;
    let stored = field >= SMALLEST_FIELD && field != NON_FINITE;
    var header = 0u;
    if (field == NON_FINITE || stored) {
        header = field;
    }
    encoded[blocks * BLOCK_VECTORS + block] = header;
    if (whole) {
        let at = first / 4u;
        for (var q = 0u; q < 4u; q++) {
            var packed = vec4(0u);
            if (stored) {
                let v = at + 4u * q;
                packed = vec4(pack4(words4[v], field), pack4(words4[v + 1u], field),
                              pack4(words4[v + 2u], field), pack4(words4[v + 3u], field));
            }
            encoded4[4u * block + q] = packed;
        }
        return;
    }
    for (var w = 0u; w < BLOCK / 4u; w++) {
        var packed = 0u;
        for (var j = 0u; j < 4u; j++) {
            let i = 4u * w + j;
            if (stored && i < count) {
                packed = packed | (quantize(words[first + i], field) << (8u * j));
            }
        }
        encoded[BLOCK_VECTORS * block + w] = packed;
    }
}

// q · 2^(e − 6) for each byte of `packed` in a block of exponent field `field`, as bits: exact
// (|q| ≤ 127, a normal result).
fn unpack4(packed: u32, field: u32) -> vec4<u32> {
    if (field == NON_FINITE) {
        return vec4(0x7FC00000u);
    }
    if (field < SMALLEST_FIELD) {
        return vec4(0u);
    }
    let scale = bitcast<f32>((field - 6u) << 23u);
    let q = vec4<i32>(bitcast<vec4<i32>>(vec4(packed << 24u, packed << 16u, packed << 8u, packed))
                      >> vec4(24u));
    return bitcast<vec4<u32>>(vec4<f32>(q) * scale);
}

// Invocation q writes the (up to) sixteen words of encoded vector q % 4 of block q / 4.
@compute @workgroup_size(WORKGROUP_SIZE)
fn decode_int8(@builtin(global_invocation_id) gid: vec3<u32>) {
    let q = gid.x + gid.y * params.row;
    let per_part = blocks_per_part();
    let blocks = (params.len / params.segment) * per_part;
    let block = q / 4u;
    if (block >= blocks) {
        return;
    }
    let local = (block % per_part) * BLOCK + 16u * (q % 4u);
    let first = (block / per_part) * params.segment + local;
    let field = encoded[blocks * BLOCK_VECTORS + block];
    let packed = encoded4[q];
    if (local + 16u <= params.segment && first % 4u == 0u) {
        let at = first / 4u;
        words4[at] = unpack4(packed.x, field);
        words4[at + 1u] = unpack4(packed.y, field);
        words4[at + 2u] = unpack4(packed.z, field);
        words4[at + 3u] = unpack4(packed.w, field);
        return;
    }
    for (var j = 0u; j < 16u; j++) {
        if (local + j >= params.segment) {
            return;
        }
        words[first + j] = unpack4(packed[j / 4u], field)[j % 4u];
    }
}
