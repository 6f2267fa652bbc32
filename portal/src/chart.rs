//! Charts drawn on the server as SVG, readable without JavaScript: columns over time and
//! horizontal bars by group, with axis labels and a `<title>` tooltip on every bar.

use std::fmt::Write;

/// One bar: its label under or beside it, its value, and the tooltip text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    pub label: String,
    pub value: i64,
    pub tooltip: String,
}

/// A rectangle in SVG user units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

const WIDTH: f64 = 760.0;
const COLUMN_HEIGHT: f64 = 260.0;
/// Room for the value axis labels (left) and the bar labels (below).
const LEFT: f64 = 80.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 44.0;
const BAR_ROW: f64 = 26.0;
const LABEL_COLUMN: f64 = 220.0;
const VALUE_COLUMN: f64 = 110.0;

/// A round step for `ticks` axis lines covering `max`: 1, 2 or 5 times a power of ten.
pub fn tick_step(max: i64, ticks: i64) -> i64 {
    let rough = (max.max(1) as f64 / ticks as f64).ceil();
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|f| f * magnitude)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * magnitude);
    (step as i64).max(1)
}

/// Where each column of a chart of `count` columns with values up to `top` goes, inside the
/// plot area (`LEFT`..`WIDTH - RIGHT`, `TOP`..`COLUMN_HEIGHT - BOTTOM`). Negative values
/// draw as nothing.
pub fn column_rects(values: &[i64], top: i64) -> Vec<Rect> {
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = COLUMN_HEIGHT - TOP - BOTTOM;
    let slot = plot_width / values.len().max(1) as f64;
    let gap = (slot * 0.2).min(12.0);
    values
        .iter()
        .enumerate()
        .map(|(i, &value)| {
            let height = plot_height * value.max(0) as f64 / top.max(1) as f64;
            Rect {
                x: LEFT + slot * i as f64 + gap / 2.0,
                y: TOP + plot_height - height,
                width: slot - gap,
                height,
            }
        })
        .collect()
}

/// Columns over time with a value axis; `axis_label` formats a value for the axis.
pub fn columns(title: &str, bars: &[Bar], axis_label: impl Fn(i64) -> String) -> String {
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(0);
    let step = tick_step(max, 4);
    let top = step * ((max + step - 1) / step).max(1);
    let plot_height = COLUMN_HEIGHT - TOP - BOTTOM;
    let mut svg = open_svg(title, WIDTH, COLUMN_HEIGHT);
    let mut tick = 0;
    while tick <= top {
        let y = TOP + plot_height - plot_height * tick as f64 / top as f64;
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#d9dee5"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="11" fill="#5f6b7a">{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            escape(&axis_label(tick))
        );
        tick += step;
    }
    // Label every column when they fit, else about every sixth.
    let every = (bars.len() / 12).max(1);
    for (i, (bar, rect)) in bars
        .iter()
        .zip(column_rects(
            &bars.iter().map(|b| b.value).collect::<Vec<_>>(),
            top,
        ))
        .enumerate()
    {
        let _ = write!(
            svg,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#2455c3"><title>{}</title></rect>"##,
            rect.x,
            rect.y,
            rect.width,
            rect.height,
            escape(&bar.tooltip)
        );
        if i % every == 0 {
            let _ = write!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11" fill="#1b1f24">{}</text>"##,
                rect.x + rect.width / 2.0,
                COLUMN_HEIGHT - BOTTOM + 16.0,
                escape(&bar.label)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Where each horizontal bar goes: one row per bar, the longest filling the bar column.
pub fn bar_rects(values: &[i64]) -> Vec<Rect> {
    let max = values.iter().copied().max().unwrap_or(0).max(1);
    let room = WIDTH - LABEL_COLUMN - VALUE_COLUMN;
    values
        .iter()
        .enumerate()
        .map(|(i, &value)| Rect {
            x: LABEL_COLUMN,
            y: TOP + BAR_ROW * i as f64 + 4.0,
            width: room * value.max(0) as f64 / max as f64,
            height: BAR_ROW - 8.0,
        })
        .collect()
}

/// Horizontal bars, label on the left and value text on the right; `value_label` formats
/// a value.
pub fn bars(title: &str, bars: &[Bar], value_label: impl Fn(i64) -> String) -> String {
    let height = TOP * 2.0 + BAR_ROW * bars.len().max(1) as f64;
    let mut svg = open_svg(title, WIDTH, height);
    let rects = bar_rects(&bars.iter().map(|b| b.value).collect::<Vec<_>>());
    for (bar, rect) in bars.iter().zip(rects) {
        let middle = rect.y + rect.height / 2.0 + 4.0;
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{middle:.1}" text-anchor="end" font-size="12" fill="#1b1f24">{}</text><rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#2455c3"><title>{}</title></rect><text x="{:.1}" y="{middle:.1}" font-size="12" fill="#5f6b7a">{}</text>"##,
            LABEL_COLUMN - 8.0,
            escape(&truncate(&bar.label, 34)),
            rect.x,
            rect.y,
            rect.width,
            rect.height,
            escape(&bar.tooltip),
            rect.x + rect.width + 6.0,
            escape(&value_label(bar.value))
        );
    }
    svg.push_str("</svg>");
    svg
}

fn open_svg(title: &str, width: f64, height: f64) -> String {
    format!(
        r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="{title}"><title>{title}</title>"#,
        title = escape(title)
    )
}

fn truncate(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Text and attribute values inside SVG markup.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(label: &str, value: i64) -> Bar {
        Bar {
            label: label.into(),
            value,
            tooltip: format!("{label}: {value}"),
        }
    }

    #[test]
    fn ticks_are_round_numbers_covering_the_largest_value() {
        assert_eq!(tick_step(100, 4), 50);
        assert_eq!(tick_step(1234, 4), 500);
        assert_eq!(tick_step(0, 4), 1);
        assert_eq!(tick_step(7, 4), 2);
        for max in [1, 9, 99, 12_345, 987_654_321] {
            assert!(tick_step(max, 4) * 4 >= max, "{max}");
        }
    }

    #[test]
    fn columns_scale_to_the_top_and_stay_inside_the_plot() {
        let rects = column_rects(&[0, 50, 100, -5], 100);
        let floor = COLUMN_HEIGHT - BOTTOM;
        assert_eq!(rects[0].height, 0.0);
        assert_eq!(rects[3].height, 0.0, "negative values draw as nothing");
        assert!(
            (rects[2].height - (floor - TOP)).abs() < 1e-9,
            "the top value fills the plot"
        );
        assert!((rects[1].height * 2.0 - rects[2].height).abs() < 1e-9);
        for pair in rects.windows(2) {
            assert!(
                pair[0].x + pair[0].width < pair[1].x,
                "columns do not overlap"
            );
        }
        for r in &rects {
            assert!(
                (r.y + r.height - floor).abs() < 1e-9,
                "every column stands on the axis"
            );
            assert!(r.x >= LEFT && r.x + r.width <= WIDTH - RIGHT);
        }
    }

    #[test]
    fn horizontal_bars_are_proportional_one_row_each() {
        let rects = bar_rects(&[400, 100, 0]);
        assert!((rects[0].width - (WIDTH - LABEL_COLUMN - VALUE_COLUMN)).abs() < 1e-9);
        assert!((rects[0].width - 4.0 * rects[1].width).abs() < 1e-9);
        assert_eq!(rects[2].width, 0.0);
        assert!(rects[0].y + rects[0].height < rects[1].y);
    }

    #[test]
    fn svg_is_well_formed_escaped_and_titled() {
        let svg = columns(
            "Spend <by> month",
            &[bar("2026-01", 1000), bar("R&D \"x\"", 2500)],
            |v| format!("{v}"),
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("<title>Spend &lt;by&gt; month</title>"));
        assert!(svg.contains("<title>R&amp;D &quot;x&quot;: 2500</title>"));
        assert!(!svg.contains("R&D"));
        assert_eq!(svg.matches("<rect").count(), 2);
        assert_eq!(svg.matches("<rect").count(), svg.matches("</rect>").count());
        // Axis: 0 up to 3000 in steps of 1000.
        for tick in [">0<", ">1000<", ">2000<", ">3000<"] {
            assert!(svg.contains(tick), "{tick} in {svg}");
        }
        let svg = bars("By team", &[bar("Sales", 5), bar("Ops", 0)], |v| {
            v.to_string()
        });
        assert_eq!(svg.matches("<title>").count(), 3);
        assert!(svg.contains(">Sales<"));
    }
}
