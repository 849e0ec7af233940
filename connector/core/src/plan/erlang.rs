//! Erlang B: the chance that a join finds every seat taken, when joins arrive at random and the
//! connector refuses (rather than queues) what does not fit. For a zone whose meetings each live
//! on one MMR this is an optimistic bound: it pools every seat, as if any participant could sit
//! on any MMR.

/// The blocking probability of `servers` seats offered `erlangs` of load (mean concurrent
/// participants, were none refused). Computed by the stable recurrence
/// B(0) = 1, B(n) = A·B(n−1) / (n + A·B(n−1)), which never overflows.
pub fn blocking(servers: u32, erlangs: f64) -> f64 {
    if erlangs <= 0.0 {
        return 0.0;
    }
    let mut b = 1.0;
    for n in 1..=servers {
        b = erlangs * b / (n as f64 + erlangs * b);
    }
    b
}

/// The fewest seats that keep blocking at or under `target` for `erlangs` of load.
pub fn seats_for(erlangs: f64, target: f64) -> u32 {
    assert!(target > 0.0 && target < 1.0, "a blocking target in (0, 1)");
    if erlangs <= 0.0 {
        return 0;
    }
    // Blocking falls as seats are added, one step of the recurrence at a time.
    let (mut n, mut b) = (0u32, 1.0);
    while b > target {
        n += 1;
        b = erlangs * b / (n as f64 + erlangs * b);
    }
    n
}

/// The most load `servers` seats carry with blocking at or under `target` (bisection; to 0.01
/// Erlang).
pub fn load_for(servers: u32, target: f64) -> f64 {
    assert!(target > 0.0 && target < 1.0, "a blocking target in (0, 1)");
    let (mut lo, mut hi) = (0.0, servers as f64 * 2.0 + 10.0);
    while hi - lo > 0.005 {
        let mid = (lo + hi) / 2.0;
        if blocking(servers, mid) <= target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Published Erlang B table values (load in Erlangs that N trunks carry at a grade of
    /// service), to the table's one decimal.
    #[test]
    fn matches_published_table_values() {
        for (servers, target, erlangs) in [
            (1, 0.01, 0.0101),
            (5, 0.01, 1.36),
            (10, 0.01, 4.46),
            (10, 0.001, 3.09),
            (20, 0.01, 12.0),
            (50, 0.01, 37.9),
            (100, 0.001, 75.2),
            (100, 0.01, 84.1),
            (200, 0.001, 165.6),
        ] {
            let got = load_for(servers, target);
            // The table rounds; the bisection stops within 0.005.
            assert!(
                (got - erlangs).abs() <= 0.06,
                "{servers} seats at {target}: {got:.2} Erlangs, table says {erlangs}"
            );
        }
    }

    #[test]
    fn seats_for_is_the_inverse_of_load_for() {
        assert_eq!(seats_for(75.2, 0.001), 100);
        assert_eq!(seats_for(165.6, 0.001), 200);
        assert_eq!(seats_for(0.0, 0.001), 0);
        for erlangs in [0.5, 3.0, 40.0, 150.0, 900.0] {
            let n = seats_for(erlangs, 0.001);
            assert!(blocking(n, erlangs) <= 0.001);
            assert!(n == 0 || blocking(n - 1, erlangs) > 0.001);
        }
    }

    #[test]
    fn blocking_of_one_seat_is_a_over_one_plus_a() {
        assert!((blocking(1, 1.0) - 0.5).abs() < 1e-12);
        assert!((blocking(1, 3.0) - 0.75).abs() < 1e-12);
        assert_eq!(blocking(0, 2.0), 1.0);
        assert_eq!(blocking(10, 0.0), 0.0);
    }
}
