//! Text helpers every chat renderer needs: cutting to a platform limit, and core's `*bold*`
//! in the double-star dialect Discord and Adaptive Cards speak.

/// Cuts `s` to at most `max` characters, ending with `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Core's `*bold*` → `**bold**` (Discord, Adaptive Cards); a lone `*` is left alone.
pub fn markdown(text: &str) -> String {
    text.split('\n')
        .map(bold_line)
        .collect::<Vec<_>>()
        .join("\n")
}

fn bold_line(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let opens = c == '*'
            && chars
                .get(i + 1)
                .is_some_and(|n| !n.is_whitespace() && *n != '*')
            && (i == 0 || chars[i - 1] != '*');
        if opens {
            let close = (i + 2..chars.len()).find(|&j| {
                chars[j] == '*' && !chars[j - 1].is_whitespace() && chars.get(j + 1) != Some(&'*')
            });
            if let Some(j) = close {
                out.push_str("**");
                out.extend(&chars[i + 1..j]);
                out.push_str("**");
                i = j + 1;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}
