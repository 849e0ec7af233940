//! Numbers and names as the reports print them: fixed decimals, thousands separators, failures
//! in words. Everything here is a pure function of its input.

/// `1234567` as "1,234,567".
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `x` with `decimals` places; "—" when not a number. Never "-0.00".
pub(crate) fn fixed(x: f64, decimals: usize) -> String {
    if !x.is_finite() {
        return "—".into();
    }
    let s = format!("{x:.decimals$}");
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        s[1..].to_string()
    } else {
        s
    }
}

/// `x` with `decimals` places and thousands separators in its whole part: "12,345.50".
pub(crate) fn fixed_thousands(x: f64, decimals: usize) -> String {
    let s = fixed(x, decimals);
    let (sign, rest) = match s.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", s.as_str()),
    };
    let (whole, frac) = match rest.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (rest, None),
    };
    match whole.parse::<u64>() {
        Ok(w) => match frac {
            Some(f) => format!("{sign}{}.{f}", thousands(w)),
            None => format!("{sign}{}", thousands(w)),
        },
        Err(_) => s.clone(),
    }
}

/// A percentage: "0.42 %".
pub(crate) fn pct(x: f64, decimals: usize) -> String {
    format!("{} %", fixed(x, decimals))
}

/// Milliseconds as seconds with two decimals: "1.25".
pub(crate) fn secs(ms: u64) -> String {
    fixed(ms as f64 / 1000.0, 2)
}

/// A monthly amount: "1,560 EUR", or "1,560.50 EUR" when it has cents.
pub(crate) fn money(x: f64, currency: &str) -> String {
    let decimals = if x.is_finite() && (x * 100.0).round() % 100.0 != 0.0 {
        2
    } else {
        0
    };
    let amount = fixed_thousands(x, decimals);
    if currency.is_empty() {
        amount
    } else {
        format!("{amount} {currency}")
    }
}

/// `1 MMR VM` / `3 MMR VMs`.
pub(crate) fn count(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{} {many}", thousands(n))
    }
}

/// A failure the forecast must survive, in words: "controller VM killed".
pub(crate) fn failure(name: Option<&str>) -> String {
    match name {
        None => "no failure".into(),
        Some("controller_vm") => "controller VM killed".into(),
        Some("mmr_vm") => "MMR VM killed".into(),
        Some("controller_and_mmr_vm") => "controller VM and MMR VM killed".into(),
        Some(other) => other.replace('_', " "),
    }
}

/// Seeds as ranges: "1–8, 11, 20–23".
pub(crate) fn seeds(list: &[u64]) -> String {
    if list.is_empty() {
        return "none".into();
    }
    let mut sorted = list.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut start = sorted[0];
    let mut prev = sorted[0];
    for &s in &sorted[1..] {
        if s == prev + 1 {
            prev = s;
            continue;
        }
        parts.push(range(start, prev));
        start = s;
        prev = s;
    }
    parts.push(range(start, prev));
    parts.join(", ")
}

fn range(a: u64, b: u64) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("{a}–{b}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(fixed(-0.001, 2), "0.00");
        assert_eq!(fixed(f64::NAN, 1), "—");
        assert_eq!(fixed_thousands(12345.5, 2), "12,345.50");
        assert_eq!(money(1560.0, "EUR"), "1,560 EUR");
        assert_eq!(money(85.5, "USD"), "85.50 USD");
        assert_eq!(secs(1250), "1.25");
        assert_eq!(seeds(&[3, 1, 2, 7, 9, 10]), "1–3, 7, 9–10");
    }
}
