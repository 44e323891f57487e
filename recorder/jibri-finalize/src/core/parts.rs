//! How a file is cut into multipart-upload parts, within S3's limits: parts of 5 MiB to
//! 5 GiB (the last may be smaller), at most 10,000 of them.

pub const MIB: u64 = 1 << 20;
pub const S3_MIN_PART: u64 = 5 * MIB;
pub const S3_MAX_PART: u64 = 5 * 1024 * MIB;
pub const S3_MAX_PARTS: u64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartPlan {
    pub size: u64,
    pub part_size: u64,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a file of {size} bytes does not fit in {S3_MAX_PARTS} parts of at most 5 GiB")]
pub struct TooLarge {
    pub size: u64,
}

/// Whether a file goes up as a multipart upload (at or above the threshold) or one PUT.
pub fn is_multipart(size: u64, threshold: u64) -> bool {
    size >= threshold
}

/// Parts of the configured size, raised (to a whole MiB) when the file would need more than
/// 10,000 of them.
pub fn plan_parts(size: u64, configured_part_size: u64) -> Result<PartPlan, TooLarge> {
    let min_for_count = size.div_ceil(S3_MAX_PARTS).div_ceil(MIB) * MIB;
    let part_size = configured_part_size.max(min_for_count).max(S3_MIN_PART);
    if part_size > S3_MAX_PART {
        return Err(TooLarge { size });
    }
    let count = size.div_ceil(part_size).max(1);
    Ok(PartPlan {
        size,
        part_size,
        count: count as u32,
    })
}

impl PartPlan {
    /// `(offset, length)` of part `n` (1-based, as S3 numbers them).
    pub fn range(&self, n: u32) -> (u64, u64) {
        let offset = u64::from(n - 1) * self.part_size;
        (offset, self.part_size.min(self.size.saturating_sub(offset)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn two_gigabytes_in_16_mib_parts() {
        let p = plan_parts(2 << 30, 16 * MIB).unwrap();
        assert_eq!((p.part_size, p.count), (16 * MIB, 128));
        assert_eq!(p.range(1), (0, 16 * MIB));
        assert_eq!(p.range(128), (127 * 16 * MIB, 16 * MIB));
    }

    #[test]
    fn the_part_size_grows_to_stay_within_10000_parts() {
        let size = 200 * 1024 * MIB; // 200 GiB at 8 MiB would be 25,600 parts
        let p = plan_parts(size, 8 * MIB).unwrap();
        assert!(u64::from(p.count) <= S3_MAX_PARTS);
        assert_eq!(p.part_size % MIB, 0);
        assert_eq!(p.part_size, 21 * MIB);
    }

    #[test]
    fn below_s3s_minimum_the_part_size_is_raised() {
        assert_eq!(plan_parts(100 * MIB, MIB).unwrap().part_size, S3_MIN_PART);
    }

    #[test]
    fn an_empty_or_tiny_file_is_one_part() {
        let p = plan_parts(0, 8 * MIB).unwrap();
        assert_eq!((p.count, p.range(1)), (1, (0, 0)));
        assert_eq!(plan_parts(3, 8 * MIB).unwrap().range(1), (0, 3));
    }

    #[test]
    fn more_than_s3_can_hold_is_refused() {
        assert!(plan_parts(S3_MAX_PART * S3_MAX_PARTS + 1, 8 * MIB).is_err());
    }

    #[test]
    fn threshold_is_inclusive() {
        assert!(is_multipart(16 * MIB, 16 * MIB));
        assert!(!is_multipart(16 * MIB - 1, 16 * MIB));
    }

    proptest! {
        #[test]
        fn parts_tile_the_file_exactly(size in 0u64..(1 << 40), part in (5u64..64).prop_map(|m| m * MIB)) {
            let p = plan_parts(size, part).unwrap();
            prop_assert!(u64::from(p.count) <= S3_MAX_PARTS);
            prop_assert!(p.part_size >= S3_MIN_PART && p.part_size <= S3_MAX_PART);
            let (last_off, last_len) = p.range(p.count);
            prop_assert_eq!(last_off + last_len, size);
            if p.count > 1 {
                prop_assert!(last_len > 0);
                prop_assert_eq!(p.range(2).0, p.part_size);
            }
        }
    }
}
