//! The full-object checksums S3 verifies for multipart uploads (CRC-64/NVME, S3's default,
//! and CRC-32), computed here so that the value S3 checks is the value of the bytes read
//! from disk, and combined part by part so that each byte is hashed once.
//!
//! S3: "Full object checksums" for multipart uploads are defined for CRC-64/NVME, CRC-32
//! and CRC-32C; the value is the CRC of the whole object, independent of the part size
//! (docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html).
//! The CRCs and their combination are `crc-fast`'s (the crate the AWS SDK computes its own
//! checksums with); only the mapping to S3's names and base64 form is here.

use crc_fast::{CrcAlgorithm, Digest};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChecksumAlgorithm {
    /// CRC-64/NVME: S3's default, the strongest of the full-object CRCs.
    Crc64Nvme,
    /// CRC-32 (ISO-HDLC, zlib's): for endpoints without CRC-64/NVME.
    Crc32,
}

impl ChecksumAlgorithm {
    /// The name S3 uses in `x-amz-checksum-algorithm` and in its responses.
    pub fn s3_name(self) -> &'static str {
        match self {
            Self::Crc64Nvme => "CRC64NVME",
            Self::Crc32 => "CRC32",
        }
    }

    /// The name used in the configuration (`CHECKSUM_ALGORITHM`).
    pub fn config_name(self) -> &'static str {
        match self {
            Self::Crc64Nvme => "crc64nvme",
            Self::Crc32 => "crc32",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s
            .trim()
            .to_ascii_lowercase()
            .replace(['-', '_', '/'], "")
            .as_str()
        {
            "crc64nvme" => Some(Self::Crc64Nvme),
            "crc32" => Some(Self::Crc32),
            _ => None,
        }
    }

    /// The catalogue entry `crc-fast` computes: both are reflected, init = xorout = all
    /// ones, so values combine (zlib's `crc32_combine` method, generalised).
    fn crc_fast(self) -> CrcAlgorithm {
        match self {
            Self::Crc64Nvme => CrcAlgorithm::Crc64Nvme,
            Self::Crc32 => CrcAlgorithm::Crc32IsoHdlc,
        }
    }

    /// Width of the value in bytes (what S3 base64-encodes, big-endian).
    pub fn width_bytes(self) -> usize {
        match self {
            Self::Crc64Nvme => 8,
            Self::Crc32 => 4,
        }
    }
}

impl fmt::Display for ChecksumAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.s3_name())
    }
}

/// A checksum value with its algorithm, shown as S3 shows it (base64 of the big-endian bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Checksum {
    pub algorithm: ChecksumAlgorithm,
    pub value: u64,
}

impl Checksum {
    pub fn base64(&self) -> String {
        let bytes = self.value.to_be_bytes();
        base64_encode(&bytes[8 - self.algorithm.width_bytes()..])
    }

    /// Parses S3's base64 form; `None` if it is not a value of this algorithm's width.
    pub fn from_base64(algorithm: ChecksumAlgorithm, s: &str) -> Option<Self> {
        let bytes = base64_decode(s.trim())?;
        if bytes.len() != algorithm.width_bytes() {
            return None;
        }
        let value = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        Some(Self { algorithm, value })
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.s3_name(), self.base64())
    }
}

/// A streaming CRC over bytes fed in order (`crc-fast`: carry-less multiplication where
/// the CPU has it, with a table fallback elsewhere).
#[derive(Debug, Clone)]
pub struct Crc {
    algorithm: ChecksumAlgorithm,
    digest: Digest,
}

impl Crc {
    pub fn new(algorithm: ChecksumAlgorithm) -> Self {
        Self {
            algorithm,
            digest: Digest::new(algorithm.crc_fast()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        self.digest.update(data);
    }

    pub fn len(&self) -> u64 {
        self.digest.get_amount()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn finish(&self) -> Checksum {
        Checksum {
            algorithm: self.algorithm,
            value: self.digest.finalize(),
        }
    }
}

/// The checksum of `a ‖ b` from the checksums of `a` and `b` and the length of `b`.
pub fn combine(a: Checksum, b: Checksum, len_b: u64) -> Checksum {
    debug_assert_eq!(a.algorithm, b.algorithm);
    Checksum {
        algorithm: a.algorithm,
        value: crc_fast::checksum_combine(a.algorithm.crc_fast(), a.value, b.value, len_b),
    }
}

/// The checksum of the empty input.
pub fn empty(algorithm: ChecksumAlgorithm) -> Checksum {
    Crc::new(algorithm).finish()
}

/// The checksum of a whole file from the checksums of its consecutive parts.
pub fn combine_parts(
    algorithm: ChecksumAlgorithm,
    parts: impl IntoIterator<Item = (Checksum, u64)>,
) -> Checksum {
    parts
        .into_iter()
        .fold(empty(algorithm), |acc, (c, len)| combine(acc, c, len))
}

/// Standard base64 with padding (what S3 uses in `x-amz-checksum-*`), from the SDK's own
/// `aws_smithy_types` (already compiled for the S3 client).
pub fn base64_encode(data: &[u8]) -> String {
    aws_smithy_types::base64::encode(data)
}

/// `None` for anything that is not standard padded base64.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    aws_smithy_types::base64::decode(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn crc(algorithm: ChecksumAlgorithm, data: &[u8]) -> Checksum {
        let mut c = Crc::new(algorithm);
        c.update(data);
        c.finish()
    }

    /// The textbook bit-at-a-time reflected CRC (init = xorout = all ones), independent of
    /// the library: the reference the property test holds it to.
    fn bitwise(algorithm: ChecksumAlgorithm, data: &[u8]) -> u64 {
        let (poly, mask) = match algorithm {
            ChecksumAlgorithm::Crc32 => (0xEDB8_8320, 0xFFFF_FFFF),
            ChecksumAlgorithm::Crc64Nvme => (0x9A6C_9329_AC4B_C9B5, u64::MAX),
        };
        let mut reg = mask;
        for &b in data {
            reg ^= u64::from(b);
            for _ in 0..8 {
                reg = if reg & 1 == 1 {
                    (reg >> 1) ^ poly
                } else {
                    reg >> 1
                };
            }
        }
        reg ^ mask
    }

    #[test]
    fn check_values_match_the_published_catalogue() {
        // The "check" values of the CRC catalogue (reveng): CRC of "123456789".
        assert_eq!(
            crc(ChecksumAlgorithm::Crc32, b"123456789").value,
            0xCBF4_3926
        );
        assert_eq!(
            crc(ChecksumAlgorithm::Crc64Nvme, b"123456789").value,
            0xAE8B_1486_0A79_9888
        );
    }

    #[test]
    fn empty_input_is_zero_for_both() {
        assert_eq!(empty(ChecksumAlgorithm::Crc32).value, 0);
        assert_eq!(empty(ChecksumAlgorithm::Crc64Nvme).value, 0);
    }

    #[test]
    fn base64_is_s3s_big_endian_form() {
        // CRC32("123456789") = CBF43926 -> y/Q5Jg== ; as `aws s3api` prints it.
        let c = crc(ChecksumAlgorithm::Crc32, b"123456789");
        assert_eq!(c.base64(), "y/Q5Jg==");
        assert_eq!(
            Checksum::from_base64(ChecksumAlgorithm::Crc32, "y/Q5Jg=="),
            Some(c)
        );
        let c64 = crc(ChecksumAlgorithm::Crc64Nvme, b"123456789");
        assert_eq!(c64.base64(), "rosUhgp5mIg=");
        assert_eq!(
            Checksum::from_base64(ChecksumAlgorithm::Crc64Nvme, &c64.base64()),
            Some(c64)
        );
        // A CRC-32 value is not a CRC-64 value.
        assert_eq!(
            Checksum::from_base64(ChecksumAlgorithm::Crc64Nvme, "y/Q5Jg=="),
            None
        );
        assert_eq!(
            Checksum::from_base64(ChecksumAlgorithm::Crc32, "not base64"),
            None
        );
    }

    #[test]
    fn algorithm_names_parse_in_the_usual_spellings() {
        assert_eq!(
            ChecksumAlgorithm::parse("CRC64NVME"),
            Some(ChecksumAlgorithm::Crc64Nvme)
        );
        assert_eq!(
            ChecksumAlgorithm::parse("crc-64/nvme"),
            Some(ChecksumAlgorithm::Crc64Nvme)
        );
        assert_eq!(
            ChecksumAlgorithm::parse("crc32"),
            Some(ChecksumAlgorithm::Crc32)
        );
        assert_eq!(ChecksumAlgorithm::parse("sha256"), None);
    }

    proptest! {
        #[test]
        fn base64_round_trips(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            prop_assert_eq!(base64_decode(&base64_encode(&data)), Some(data));
        }

        #[test]
        fn the_library_equals_a_bitwise_reference(data in proptest::collection::vec(any::<u8>(), 0..200), split in 0usize..200) {
            for algorithm in [ChecksumAlgorithm::Crc32, ChecksumAlgorithm::Crc64Nvme] {
                let whole = crc(algorithm, &data);
                prop_assert_eq!(whole.value, bitwise(algorithm, &data));
                // Fed in two pieces, the streaming hasher gives the same value.
                let at = split.min(data.len());
                let mut c = Crc::new(algorithm);
                c.update(&data[..at]);
                c.update(&data[at..]);
                prop_assert_eq!(c.finish(), whole);
            }
        }

        #[test]
        fn combining_part_checksums_gives_the_whole_files(data in proptest::collection::vec(any::<u8>(), 0..600), cuts in proptest::collection::vec(0usize..600, 0..5)) {
            for algorithm in [ChecksumAlgorithm::Crc32, ChecksumAlgorithm::Crc64Nvme] {
                let mut cuts: Vec<usize> = cuts.iter().map(|c| c.min(&data.len()).to_owned()).collect();
                cuts.push(0);
                cuts.push(data.len());
                cuts.sort_unstable();
                let parts = cuts.windows(2).map(|w| (crc(algorithm, &data[w[0]..w[1]]), (w[1] - w[0]) as u64));
                prop_assert_eq!(combine_parts(algorithm, parts), crc(algorithm, &data));
            }
        }
    }

    #[test]
    fn combine_appends_megabytes_exactly() {
        // The zero-append operator for 4 MiB, checked against hashing the bytes.
        let zeros = vec![0u8; 1 << 20];
        for algorithm in [ChecksumAlgorithm::Crc32, ChecksumAlgorithm::Crc64Nvme] {
            let a = crc(algorithm, b"head");
            let mut c = Crc::new(algorithm);
            c.update(b"head");
            for _ in 0..4 {
                c.update(&zeros);
            }
            let z4 = {
                let mut z = Crc::new(algorithm);
                for _ in 0..4 {
                    z.update(&zeros);
                }
                z.finish()
            };
            assert_eq!(combine(a, z4, 4 << 20), c.finish());
        }
    }
}
