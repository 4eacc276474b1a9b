//! Voucher codes: 80 random bits as 16 characters of Crockford's base32 and one check
//! character (Luhn mod 32), so a mistyped code is refused before any lookup.
//!
//! Shown as `ABCD-EFGH-JKMN-PQRS-T`. Read back, case, dashes and spaces do not matter,
//! and the letters people confuse with digits (`O`, `I`, `L`) are read as `0` and `1`.

/// Crockford's base32: no I, L, O, U.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Characters of a code without its check character.
const DATA: usize = 16;

fn value_of(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == c).map(|i| i as u32)
}

/// The Luhn mod 32 sum over `values` read right to left, doubling every `first_factor`
/// one (2 for the data alone, 1 when the check character is included).
fn luhn_sum(values: impl DoubleEndedIterator<Item = u32>, first_factor: u32) -> u32 {
    let mut factor = first_factor;
    let mut sum = 0;
    for v in values.rev() {
        let addend = factor * v;
        sum += addend / 32 + addend % 32;
        factor = if factor == 2 { 1 } else { 2 };
    }
    sum % 32
}

/// The code for ten random bytes, with dashes, as a member is shown it.
pub fn format_code(random: [u8; 10]) -> String {
    let mut bits: u128 = 0;
    for b in random {
        bits = (bits << 8) | u128::from(b);
    }
    let values: Vec<u32> = (0..DATA).rev().map(|i| ((bits >> (i * 5)) & 31) as u32).collect();
    let check = (32 - luhn_sum(values.iter().copied(), 2)) % 32;
    let mut out = String::with_capacity(DATA + 5);
    for (i, v) in values.iter().chain(std::iter::once(&check)).enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        out.push(ALPHABET[*v as usize] as char);
    }
    out
}

/// A code as typed, in its one stored form (17 capitals and digits, no dashes), or
/// `None` when it cannot be a code we issued: wrong length, a character outside the
/// alphabet, or a check character that does not match (one wrong character, or two
/// neighbours swapped, are caught).
pub fn canonical_code(typed: &str) -> Option<String> {
    if typed.len() > 64 {
        return None;
    }
    let mut out = String::with_capacity(DATA + 1);
    for c in typed.chars() {
        let c = match c.to_ascii_uppercase() {
            '-' | ' ' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        if !c.is_ascii() || value_of(c as u8).is_none() {
            return None;
        }
        out.push(c);
    }
    if out.len() != DATA + 1 {
        return None;
    }
    let values: Vec<u32> = out.bytes().filter_map(value_of).collect();
    (luhn_sum(values.into_iter(), 1) == 0).then_some(out)
}

/// The last four characters before the check character: enough for a member to tell
/// her vouchers apart, useless for guessing one.
pub fn code_hint(canonical: &str) -> String {
    canonical.get(DATA - 4..DATA).unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_code_reads_back_in_any_case_and_spacing() {
        let code = format_code([7, 1, 200, 3, 99, 0, 255, 17, 42, 128]);
        assert_eq!(code.len(), 21);
        let canonical = canonical_code(&code).expect("a code we made reads back");
        assert_eq!(canonical, code.replace('-', ""));
        let loose = code.to_lowercase().replace('-', " ");
        assert_eq!(canonical_code(&loose).as_deref(), Some(canonical.as_str()));
        assert_eq!(code_hint(&canonical).len(), 4);
    }

    #[test]
    fn every_single_wrong_character_is_caught() {
        for seed in 0u8..20 {
            let code = format_code([seed, seed.wrapping_mul(7), 3, 4, 5, 6, 7, 8, 9, seed]).replace('-', "");
            for pos in 0..code.len() {
                for &c in ALPHABET.iter() {
                    let mut b = code.clone().into_bytes();
                    if b[pos] == c {
                        continue;
                    }
                    b[pos] = c;
                    let typo = String::from_utf8(b).unwrap();
                    assert_eq!(canonical_code(&typo), None, "{typo} passed for {code}");
                }
            }
        }
    }

    #[test]
    fn swapped_neighbours_are_caught() {
        let code = format_code([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).replace('-', "");
        let b = code.as_bytes();
        for i in 0..b.len() - 1 {
            if b[i] == b[i + 1] {
                continue;
            }
            let mut s = b.to_vec();
            s.swap(i, i + 1);
            let swapped = String::from_utf8(s).unwrap();
            // Luhn mod 32 misses one swap only: `0` and `Z` (values 0 and 31).
            let pair = (value_of(b[i]).unwrap(), value_of(b[i + 1]).unwrap());
            if pair != (0, 31) && pair != (31, 0) {
                assert_eq!(canonical_code(&swapped), None, "{swapped} passed for {code}");
            }
        }
    }

    #[test]
    fn what_is_not_a_code_is_refused() {
        for typed in [
            "",
            "ABCD",
            "ABCD-EFGH-JKMN-PQRS-TT",
            "ABCD-EFGH-JKMN-PQRS-U",
            "ÄBCD-EFGH-JKMN-PQRS-T",
        ] {
            assert_eq!(canonical_code(typed), None, "{typed}");
        }
        assert_eq!(canonical_code(&"A".repeat(100)), None);
    }
}
