//! Byte-level helpers shared by the parsers' hot paths.

/// `bytes` as text. simdutf8 checks the common, valid case with vector instructions (std's
/// check of every line was 4-5% of a stderr or jsonlog parse); an invalid line is checked again
/// by std, whose error says where the first bad byte is.
pub(crate) fn utf8(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    simdutf8::basic::from_utf8(bytes).or_else(|_| std::str::from_utf8(bytes))
}

/// `text.rsplit_once(byte)` for an ASCII `byte`, by a backward byte loop: the values split this
/// way (a client address and its port) are short, and `rsplit_once`'s `memrchr` call was 1.6%
/// of a stderr parse.
pub(crate) fn rsplit_once_byte(text: &str, byte: u8) -> Option<(&str, &str)> {
    let at = text.bytes().rposition(|candidate| candidate == byte)?;
    Some((text.get(..at)?, text.get(at + 1..)?))
}

/// `0x01` in every byte of a word.
const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
/// `0x7f` in every byte of a word.
const LOW_SEVEN: u64 = u64::from_ne_bytes([0x7f; 8]);

/// `chunk` (at most eight bytes) as a little-endian word, zero-padded when it is shorter.
fn load(chunk: &[u8]) -> u64 {
    u64::from_le_bytes(<[u8; 8]>::try_from(chunk).unwrap_or_else(|_| {
        let mut word = [0u8; 8];
        word.iter_mut().zip(chunk).for_each(|(slot, byte)| *slot = *byte);
        word
    }))
}

/// The first eight bytes of `bytes` as a little-endian word, zero-padded when there are fewer.
pub(crate) fn load_prefix(bytes: &[u8]) -> u64 {
    load(bytes.get(..8).unwrap_or(bytes))
}

/// `0x80` in each byte of `word` that equals the byte repeated in `pattern`, `0` elsewhere:
/// exact (no carry crosses a byte).
fn equal_bytes(word: u64, pattern: u64) -> u64 {
    let difference = word ^ pattern;
    !(((difference & LOW_SEVEN) + LOW_SEVEN) | difference | LOW_SEVEN)
}

/// The index of the first `a` or `b` in `bytes`, looking through eight bytes at a time (the
/// short strings of a log line end before `memchr`'s setup pays). Neither may be zero.
pub(crate) fn find_either(bytes: &[u8], a: u8, b: u8) -> Option<usize> {
    let (pattern_a, pattern_b) = (ONES * u64::from(a), ONES * u64::from(b));
    let mut offset = 0;
    for chunk in bytes.chunks(8) {
        let word = load(chunk);
        let found = equal_bytes(word, pattern_a) | equal_bytes(word, pattern_b);
        if found != 0 {
            return Some(offset + found.trailing_zeros() as usize / 8);
        }
        offset += chunk.len();
    }
    None
}

/// The index of the first `needle` in `bytes`: the first 32 bytes eight at a time (a short CSV
/// field ends there, before `memchr`'s setup pays), the rest by `memchr`.
pub(crate) fn find_byte(bytes: &[u8], needle: u8) -> Option<usize> {
    let head = bytes.get(..32).unwrap_or(bytes);
    if let Some(found) = find_either(head, needle, needle) {
        return Some(found);
    }
    Some(head.len() + memchr::memchr(needle, bytes.get(head.len()..)?)?)
}

/// For each needle, a bit per byte of `block` (at most 64 bytes, bit `i` for byte `i`) set
/// where the byte is that needle: 16 bytes compared at a time with SSE2 (through `safe_arch`),
/// where eight bytes a word took about twice the instructions (pgAudit's short fields).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline]
pub(crate) fn byte_masks<const N: usize>(block: &[u8], needles: [u8; N]) -> [u64; N] {
    use safe_arch::{cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i, set_splat_i8_m128i};
    let mut padded = [0u8; 64];
    // A short block is padded with zeros, which no needle is: callers look for printable bytes.
    let block: &[u8; 64] = match block.get(..64).and_then(|head| head.try_into().ok()) {
        Some(full) => full,
        None => {
            padded.iter_mut().zip(block).for_each(|(slot, byte)| *slot = *byte);
            &padded
        }
    };
    let patterns = needles.map(|needle| set_splat_i8_m128i(needle.cast_signed()));
    let mut masks = [0; N];
    for (index, chunk) in block.chunks_exact(16).enumerate() {
        let Ok(chunk) = <&[u8; 16]>::try_from(chunk) else { continue };
        let bytes = load_unaligned_m128i(chunk);
        for (mask, pattern) in masks.iter_mut().zip(patterns) {
            let bits = move_mask_i8_m128i(cmp_eq_mask_i8_m128i(bytes, pattern)).cast_unsigned();
            *mask |= u64::from(bits) << (16 * index);
        }
    }
    masks
}

/// For each needle, a bit per byte of `block` (at most 64 bytes, bit `i` for byte `i`) set
/// where the byte is that needle: each word of eight bytes loaded once for all needles, with no
/// branch per byte.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline]
pub(crate) fn byte_masks<const N: usize>(block: &[u8], needles: [u8; N]) -> [u64; N] {
    let patterns = needles.map(|needle| ONES * u64::from(needle));
    let mut masks = [0; N];
    for (index, chunk) in block.chunks(8).take(8).enumerate() {
        let word = load(chunk);
        for (mask, pattern) in masks.iter_mut().zip(patterns) {
            // A zero needle would match the padding: callers look for printable bytes.
            let zero = equal_bytes(word, pattern);
            // The eight high bits gathered into the low byte, byte 0 first.
            let bits = ((zero >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56;
            *mask |= bits << (8 * index);
        }
    }
    masks
}

/// The bytes of JSON text a scanner looks for first, a bit per byte of a 64-byte block (bit `i`
/// for byte `i`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct JsonMasks {
    pub(crate) quotes: u64,
    pub(crate) backslashes: u64,
    /// Bytes below 0x20, which JSON forbids raw inside strings.
    pub(crate) controls: u64,
}

/// [`JsonMasks`] of a 64-byte block, 16 bytes at a time with the SSE2 instructions every x86-64
/// has (through `safe_arch`): about a dozen instructions per 16 bytes where looking at each byte
/// costs a branch.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline]
pub(crate) fn json_masks(block: &[u8; 64]) -> JsonMasks {
    use safe_arch::{
        cmp_eq_mask_i8_m128i, load_unaligned_m128i, min_u8_m128i, move_mask_i8_m128i, set_splat_i8_m128i,
    };
    let quote = set_splat_i8_m128i(b'"' as i8);
    let backslash = set_splat_i8_m128i(b'\\' as i8);
    let last_control = set_splat_i8_m128i(0x1f);
    let mut masks = JsonMasks::default();
    for (index, chunk) in block.chunks_exact(16).enumerate() {
        let Ok(chunk) = <&[u8; 16]>::try_from(chunk) else { continue };
        let bytes = load_unaligned_m128i(chunk);
        // `move_mask` sets the low 16 bits of the `i32`, one per byte.
        let bits = |mask| u64::from(move_mask_i8_m128i(mask).cast_unsigned()) << (16 * index);
        masks.quotes |= bits(cmp_eq_mask_i8_m128i(bytes, quote));
        masks.backslashes |= bits(cmp_eq_mask_i8_m128i(bytes, backslash));
        // A byte is at most 0x1f when the smaller of it and 0x1f is itself.
        masks.controls |= bits(cmp_eq_mask_i8_m128i(min_u8_m128i(bytes, last_control), bytes));
    }
    masks
}

/// The quotes of a 64-byte block, a bit per byte, and whether the block holds a backslash or a
/// control character ([`json_masks`] then says where): most blocks of a log line hold neither,
/// and this costs them one `move_mask` per 16 bytes instead of three.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline]
pub(crate) fn quote_mask(block: &[u8; 64]) -> (u64, bool) {
    use safe_arch::{
        cmp_eq_mask_i8_m128i, load_unaligned_m128i, min_u8_m128i, move_mask_i8_m128i, set_splat_i8_m128i,
        zeroed_m128i,
    };
    let quote = set_splat_i8_m128i(b'"'.cast_signed());
    let backslash = set_splat_i8_m128i(b'\\'.cast_signed());
    let last_control = set_splat_i8_m128i(0x1f);
    let mut quotes = 0;
    let mut special = zeroed_m128i();
    for (index, chunk) in block.chunks_exact(16).enumerate() {
        let Ok(chunk) = <&[u8; 16]>::try_from(chunk) else { continue };
        let bytes = load_unaligned_m128i(chunk);
        let bits = move_mask_i8_m128i(cmp_eq_mask_i8_m128i(bytes, quote)).cast_unsigned();
        quotes |= u64::from(bits) << (16 * index);
        special = special
            | cmp_eq_mask_i8_m128i(bytes, backslash)
            | cmp_eq_mask_i8_m128i(min_u8_m128i(bytes, last_control), bytes);
    }
    (quotes, move_mask_i8_m128i(special) != 0)
}

/// [`quote_mask`] from [`json_masks`] (targets without SSE2).
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
pub(crate) fn quote_mask(block: &[u8; 64]) -> (u64, bool) {
    let masks = json_masks(block);
    (masks.quotes, masks.backslashes | masks.controls != 0)
}

/// [`JsonMasks`] of a 64-byte block, one byte at a time (targets without SSE2).
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
pub(crate) fn json_masks(block: &[u8; 64]) -> JsonMasks {
    let mut masks = JsonMasks::default();
    for (index, byte) in block.iter().enumerate() {
        let bit = 1u64 << index;
        masks.quotes |= if *byte == b'"' { bit } else { 0 };
        masks.backslashes |= if *byte == b'\\' { bit } else { 0 };
        masks.controls |= if *byte < 0x20 { bit } else { 0 };
    }
    masks
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn invalid_text_keeps_std_error() {
        let error = utf8(b"abc\xffdef").unwrap_err();
        assert_eq!(error.valid_up_to(), 3);
        assert_eq!(utf8("é ok".as_bytes()), Ok("é ok"));
    }

    proptest! {
        /// The byte loop splits where `rsplit_once` splits, for ASCII separators in any text.
        #[test]
        fn rsplit_once_byte_agrees_with_rsplit_once(text in "[a(:é)0-9]{0,16}", separator in "[(:]") {
            let byte = separator.as_bytes()[0];
            prop_assert_eq!(rsplit_once_byte(&text, byte), text.rsplit_once(char::from(byte)));
        }

        #[test]
        fn byte_masks_mark_exactly_the_needles(block in prop::collection::vec(any::<u8>(), 0..=64), needle in 1u8..) {
            let expected = |wanted: u8| {
                block
                    .iter()
                    .enumerate()
                    .filter(|(_, byte)| **byte == wanted)
                    .fold(0u64, |mask, (index, _)| mask | 1 << index)
            };
            prop_assert_eq!(byte_masks(&block, [needle, b'"']), [expected(needle), expected(b'"')]);
        }

        #[test]
        fn find_byte_finds_the_first(bytes in prop::collection::vec(prop::sample::select(vec![b'a', b',', 0, 0xff]), 0..80)) {
            prop_assert_eq!(find_byte(&bytes, b','), bytes.iter().position(|byte| *byte == b','));
        }

        #[test]
        fn find_either_finds_the_first_of_two(bytes in prop::collection::vec(prop::sample::select(vec![b'a', b'"', b'\\', 0, 0xff, b'\n']), 0..40)) {
            prop_assert_eq!(
                find_either(&bytes, b'"', b'\\'),
                bytes.iter().position(|byte| matches!(byte, b'"' | b'\\'))
            );
        }

        #[test]
        fn json_masks_mark_quotes_backslashes_and_controls(block in prop::collection::vec(prop::sample::select(vec![b'a', b'"', b'\\', 0, 0x1f, 0x20, 0x7f, 0x80, 0x9f, 0xff, b'\n']), 64)) {
            let expected = |wanted: &dyn Fn(u8) -> bool| {
                block.iter().enumerate().filter(|(_, byte)| wanted(**byte)).fold(0u64, |mask, (index, _)| mask | 1 << index)
            };
            let block: [u8; 64] = block.as_slice().try_into().unwrap();
            let masks = json_masks(&block);
            prop_assert_eq!(masks.quotes, expected(&|byte| byte == b'"'));
            prop_assert_eq!(masks.backslashes, expected(&|byte| byte == b'\\'));
            prop_assert_eq!(masks.controls, expected(&|byte| byte < 0x20));
            prop_assert_eq!(quote_mask(&block), (masks.quotes, masks.backslashes | masks.controls != 0));
        }

        #[test]
        fn utf8_agrees_with_std(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            prop_assert_eq!(utf8(&bytes), std::str::from_utf8(&bytes));
        }
    }
}
