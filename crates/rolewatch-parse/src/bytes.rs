//! Byte-level helpers shared by the parsers' hot paths.

/// `bytes` as text. simdutf8 checks the common, valid case with vector instructions (std's
/// check of every line was 4-5% of a stderr or jsonlog parse); an invalid line is checked again
/// by std, whose error says where the first bad byte is.
pub(crate) fn utf8(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    simdutf8::basic::from_utf8(bytes).or_else(|_| std::str::from_utf8(bytes))
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

/// For each needle, a bit per byte of `block` (at most 64 bytes, bit `i` for byte `i`) set
/// where the byte is that needle: each word of eight bytes loaded once for all needles, with no
/// branch per byte.
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
        fn find_either_finds_the_first_of_two(bytes in prop::collection::vec(prop::sample::select(vec![b'a', b'"', b'\\', 0, 0xff, b'\n']), 0..40)) {
            prop_assert_eq!(
                find_either(&bytes, b'"', b'\\'),
                bytes.iter().position(|byte| matches!(byte, b'"' | b'\\'))
            );
        }

        #[test]
        fn utf8_agrees_with_std(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            prop_assert_eq!(utf8(&bytes), std::str::from_utf8(&bytes));
        }
    }
}
