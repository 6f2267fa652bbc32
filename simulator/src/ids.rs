use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Crockford base32: a subset of `[0-9A-Z]` whose ASCII order matches its numeric order.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const ALNUM: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Generates ULID-style ids that are deterministic for a seed and sort in creation order:
/// 10 chars of a sequence number (where a ULID has its timestamp) then 16 random chars.
pub struct IdGen {
    sequence: u64,
    /// How many times this generator was restored from a state file. Each restore draws its
    /// random parts from a different stream, so they do not repeat values handed out before.
    generation: u64,
    rng: StdRng,
}

impl IdGen {
    pub fn new(seed: u64) -> Self {
        Self {
            sequence: 0,
            generation: 0,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Continues after a saved `sequence`; `generation` must grow with every restore.
    pub fn resume(seed: u64, sequence: u64, generation: u64) -> Self {
        Self {
            sequence,
            generation,
            rng: StdRng::seed_from_u64(stream_seed(seed, generation)),
        }
    }

    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn next(&mut self, prefix: &str) -> String {
        self.sequence += 1;
        let mut id = String::with_capacity(prefix.len() + 27);
        id.push_str(prefix);
        id.push('_');
        for shift in (0..10).rev() {
            id.push(CROCKFORD[((self.sequence >> (shift * 5)) & 31) as usize] as char);
        }
        for _ in 0..16 {
            id.push(CROCKFORD[self.rng.gen_range(0..32)] as char);
        }
        id
    }

    /// A 19-digit ICCID: `8944`, 14 random digits, Luhn check digit.
    pub fn iccid(&mut self) -> String {
        let mut digits = String::from("8944");
        for _ in 0..14 {
            digits.push(char::from(b'0' + self.rng.gen_range(0..10u8)));
        }
        let check = luhn_check_digit(&digits);
        digits.push(char::from(b'0' + check));
        digits
    }

    /// An SM-DP+ matching id shaped `K2-XXXXX-XXXXXX`.
    pub fn matching_id(&mut self) -> String {
        format!("K2-{}-{}", self.alnum(5), self.alnum(6))
    }

    /// A 32-digit EID whose value mod 97 is 1 (the ISO 7064 check used by GSMA).
    pub fn eid(&mut self) -> String {
        let mut body = String::from("89049032");
        for _ in 0..22 {
            body.push(char::from(b'0' + self.rng.gen_range(0..10u8)));
        }
        let remainder = mod97(&format!("{body}00"));
        let check = 98 - remainder;
        format!("{body}{check:02}")
    }

    /// A UK-style porting authorisation code (PAC): three letters, six digits.
    pub fn porting_code(&mut self) -> String {
        let letters: String = (0..3)
            .map(|_| char::from(b'A' + self.rng.gen_range(0..26u8)))
            .collect();
        format!("{letters}{}", self.digits(6))
    }

    pub fn digits(&mut self, count: usize) -> String {
        (0..count)
            .map(|_| char::from(b'0' + self.rng.gen_range(0..10u8)))
            .collect()
    }

    fn alnum(&mut self, count: usize) -> String {
        (0..count)
            .map(|_| ALNUM[self.rng.gen_range(0..36)] as char)
            .collect()
    }
}

/// The seed of the random stream for a generation (generation 0 is the plain seed).
pub fn stream_seed(seed: u64, generation: u64) -> u64 {
    seed ^ generation.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

pub fn luhn_check_digit(payload: &str) -> u8 {
    let sum: u32 = payload
        .bytes()
        .rev()
        .enumerate()
        .map(|(index, byte)| {
            let digit = u32::from(byte - b'0');
            if index % 2 == 0 {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                digit
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

pub fn is_valid_luhn(number: &str) -> bool {
    let Some((payload, check)) = number.split_at_checked(number.len().saturating_sub(1)) else {
        return false;
    };
    !payload.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
        && luhn_check_digit(payload) == check.as_bytes()[0] - b'0'
}

pub fn is_valid_eid(eid: &str) -> bool {
    eid.len() == 32 && eid.bytes().all(|b| b.is_ascii_digit()) && mod97(eid) == 1
}

fn mod97(digits: &str) -> u32 {
    digits
        .bytes()
        .fold(0u32, |acc, byte| (acc * 10 + u32::from(byte - b'0')) % 97)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_identifiers_are_valid() {
        let mut ids = IdGen::new(7);
        let iccid = ids.iccid();
        assert_eq!(iccid.len(), 19);
        assert!(iccid.starts_with("8944"));
        assert!(is_valid_luhn(&iccid));
        assert!(is_valid_eid(&ids.eid()));
        let matching = ids.matching_id();
        assert_eq!(matching.len(), 15);
        assert!(matching.starts_with("K2-"));
        let first = ids.next("sub");
        let second = ids.next("sub");
        assert!(first < second);
        assert_eq!(first.len(), 4 + 26);
    }

    #[test]
    fn luhn_matches_known_value() {
        assert_eq!(luhn_check_digit("7992739871"), 3);
    }
}
