use super::*;
use proptest::prelude::*;
use std::collections::HashSet;

const LONG: Duration = Duration::from_secs(3600);

fn digest(n: u32) -> Digest {
    crate::crypto::sha256(&[&n.to_le_bytes()])
}

#[test]
fn an_inserted_digest_is_refused_and_no_other() {
    let set = Tombstones::new(1000, "test");
    assert!(!set.contains(&digest(1)));
    set.insert(digest(1), LONG);
    assert!(set.contains(&digest(1)));
    assert!(!set.contains(&digest(2)));
    set.insert(digest(3), Duration::ZERO);
    assert!(!set.contains(&digest(3)), "a zero keep remembers nothing");
    assert_eq!(set.figures().entries, 1);
}

#[test]
fn a_digest_is_forgotten_at_its_deadline_and_not_before() {
    let set = Tombstones::new(1000, "test");
    set.insert(digest(1), Duration::from_millis(60));
    set.insert(digest(2), LONG);
    assert!(set.contains(&digest(1)));
    std::thread::sleep(Duration::from_millis(120));
    assert!(!set.contains(&digest(1)));
    assert!(set.contains(&digest(2)));
}

#[test]
fn a_memory_is_only_ever_extended() {
    let set = Tombstones::new(1000, "test");
    set.insert(digest(1), LONG);
    set.insert(digest(1), Duration::from_millis(1));
    std::thread::sleep(Duration::from_millis(30));
    assert!(
        set.contains(&digest(1)),
        "a shorter keep does not shorten it"
    );
    set.insert(digest(2), Duration::from_millis(1));
    set.insert(digest(2), LONG);
    std::thread::sleep(Duration::from_millis(30));
    assert!(set.contains(&digest(2)), "a longer keep extends it");
    assert_eq!(set.figures().entries, 2);
}

#[test]
fn what_is_in_force_is_listed_with_the_time_it_has_left() {
    let set = Tombstones::new(1000, "test");
    set.insert(digest(1), LONG);
    set.insert(digest(2), Duration::from_millis(20));
    std::thread::sleep(Duration::from_millis(40));
    let listed = set.in_force();
    assert_eq!(listed.len(), 1, "the expired one is not listed");
    let (listed_digest, left) = listed[0];
    assert_eq!(listed_digest, digest(1));
    assert!(
        left <= LONG && left > LONG - Duration::from_secs(5),
        "{left:?}"
    );
}

#[test]
fn expired_entries_are_swept_as_the_set_grows() {
    let set = Tombstones::new(100_000, "test");
    for n in 0..2000 {
        set.insert(digest(n), Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(60));
    for n in 2000..4000 {
        set.insert(digest(n), LONG);
    }
    let entries = set.figures().entries;
    assert!(
        entries < 3000,
        "{entries} entries: the expired ones were not swept"
    );
    assert!((2000..4000).all(|n| set.contains(&digest(n))));
}

#[test]
fn a_full_set_forgets_first_what_it_had_to_remember_least() {
    let set = Tombstones::new(256, "test");
    // Each digest is remembered longer than the one before.
    for n in 0..5000u32 {
        set.insert(digest(n), LONG + Duration::from_secs(u64::from(n)));
    }
    let entries = set.figures().entries;
    assert!(entries <= 256, "{entries} entries held, capacity 256");
    assert!(
        entries >= 128,
        "{entries} entries held: far more forgotten than needed"
    );
    assert!(
        (4990..5000).all(|n| set.contains(&digest(n))),
        "the longest memories stay"
    );
    assert!(
        !(0..100).any(|n| set.contains(&digest(n))),
        "the shortest go"
    );
}

#[test]
fn a_set_that_never_filled_forgot_nothing() {
    // 25 entries per shard on average against room for 125.
    let set = Tombstones::new(1000, "test");
    for n in 0..200u32 {
        set.insert(digest(n), LONG);
    }
    assert!(!set.forgot_any());
}

/// A digest that lands in the same shard as `digest(0)`.
fn shard_mate_of_zero() -> u32 {
    let shard = |d: Digest| usize::from(d[0]) & (SHARDS - 1);
    (1..)
        .find(|&n| shard(digest(n)) == shard(digest(0)))
        .unwrap_or(1)
}

/// A refusal dropped to make room is a revocation lost: the set must say so for as long as
/// the dropped digest would have been refused, and no longer. (A set of capacity `SHARDS`
/// holds one entry per shard, so a second entry in a shard drops the first.)
#[test]
fn a_full_set_says_it_forgot_for_as_long_as_the_dropped_refusal_mattered() {
    let mate = shard_mate_of_zero();

    let short = Tombstones::new(SHARDS as u64, "test");
    short.insert(digest(0), Duration::from_millis(300));
    assert_eq!(short.figures().forgotten_in_force, Duration::ZERO);
    short.insert(digest(mate), LONG);
    assert!(
        !short.contains(&digest(0)),
        "the nearest deadline went first"
    );
    assert!(short.contains(&digest(mate)));
    assert!(short.forgot_any(), "the set must say it dropped a refusal");
    let in_force = short.figures().forgotten_in_force;
    assert!(
        in_force > Duration::ZERO && in_force <= Duration::from_millis(300),
        "{in_force:?}: the dropped refusal's time left"
    );
    std::thread::sleep(Duration::from_millis(400));
    assert!(
        !short.forgot_any(),
        "once the dropped refusal would have lapsed, nothing is lost any more"
    );
    assert_eq!(short.figures().forgotten_in_force, Duration::ZERO);

    let long = Tombstones::new(SHARDS as u64, "test");
    long.insert(digest(0), LONG);
    long.insert(digest(mate), LONG + Duration::from_secs(1));
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        long.forgot_any(),
        "a dropped refusal of an hour stays lost for that hour"
    );
    assert!(long.figures().forgotten_in_force > LONG - Duration::from_secs(1));
}

/// What a remembered logout costs is what lets a replica run for days at a steady rate of
/// logouts: pinned so that a change of structure cannot quietly multiply it.
#[test]
fn an_entry_costs_under_sixty_four_bytes() {
    let set = Tombstones::new(200_000, "test");
    for n in 0..100_000 {
        set.insert(digest(n), LONG);
    }
    let figures = set.figures();
    assert_eq!(figures.entries, 100_000);
    let per_entry = figures.bytes / figures.entries;
    assert!(per_entry < 64, "{per_entry} bytes per entry");
}

#[test]
fn shards_answer_from_many_threads_at_once() {
    let set = std::sync::Arc::new(Tombstones::new(100_000, "test"));
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let set = set.clone();
            std::thread::spawn(move || {
                for n in (t * 1000)..(t * 1000 + 1000) {
                    set.insert(digest(n), LONG);
                    assert!(set.contains(&digest(n)));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("no panic");
    }
    assert_eq!(set.figures().entries, 4000);
    assert!((0..4000).all(|n| set.contains(&digest(n))));
}

proptest! {
    /// Without deadlines passing or the capacity reached, the set answers exactly as a plain
    /// set of what was inserted with a nonzero keep.
    #[test]
    fn answers_as_a_set_of_what_was_inserted(ops in prop::collection::vec((0u32..64, any::<bool>(), any::<bool>()), 0..300)) {
        let set = Tombstones::new(10_000, "test");
        let mut model = HashSet::new();
        for (n, insert, zero) in ops {
            if insert {
                set.insert(digest(n), if zero { Duration::ZERO } else { LONG });
                if !zero {
                    model.insert(n);
                }
            }
            prop_assert_eq!(set.contains(&digest(n)), model.contains(&n));
        }
        prop_assert_eq!(set.figures().entries, model.len());
    }
}
