//! The clicks-per-month chart, drawn on the server as inline SVG: one bar per calendar
//! month from the first month with clicks to the last (months without clicks are bars
//! of height 0), a y axis with round ticks, month labels thinned out so they never
//! overlap, and every value readable (printed on the bar when it fits, always in the
//! bar's `<title>` and in the table the page puts under the chart).

use maud::{html, Markup};
use smsreport_core::insights::{Latency, LATENCY_BOUNDS_S};
use smsreport_core::report::MonthRow;
use smsreport_core::time::Month;

use super::format::{group, month_abbr, month_long};

/// The drawing's size in SVG units; it scales to its container's width.
const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 280.0;
/// The most months drawn: beyond, the latest ones (the table has them all).
pub const MAX_MONTHS: usize = 120;
/// Approximate width of one character of the chart's 12-unit text.
const CHAR_W: f64 = 7.0;

/// One bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bar {
    pub month: Month,
    pub clicks: u64,
}

/// The bars for `months` (ascending, as in the report): every month from the first to
/// the last, at most the latest [`MAX_MONTHS`]. Rows whose month does not parse are left
/// out.
pub fn bars(months: &[MonthRow]) -> Vec<Bar> {
    let parsed: Vec<(Month, u64)> = months
        .iter()
        .filter_map(|m| Some((Month::parse(&m.month)?, m.clicks)))
        .collect();
    let (Some(first), Some(last)) = (parsed.first(), parsed.last()) else {
        return Vec::new();
    };
    let span = (i64::from(last.0.year()) * 12 + i64::from(last.0.month()))
        - (i64::from(first.0.year()) * 12 + i64::from(first.0.month()))
        + 1;
    let skip = (span.max(1) as usize).saturating_sub(MAX_MONTHS);
    let mut out = Vec::new();
    let mut it = parsed.iter().peekable();
    let mut m = first.0;
    for i in 0..span.max(1) as usize {
        let mut clicks = 0;
        while let Some((pm, c)) = it.peek() {
            if *pm <= m {
                if *pm == m {
                    clicks += c;
                }
                it.next();
            } else {
                break;
            }
        }
        if i >= skip {
            out.push(Bar { month: m, clicks });
        }
        m = m.next();
    }
    out
}

/// A round step for about four intervals up to `max`: 1, 2 or 5 times a power of ten,
/// at least 1.
pub fn nice_step(max: u64) -> u64 {
    let raw = max.div_ceil(4).max(1);
    let mut mag = 1u64;
    loop {
        for m in [1, 2, 5] {
            if let Some(s) = mag.checked_mul(m) {
                if s >= raw {
                    return s;
                }
            }
        }
        match mag.checked_mul(10) {
            Some(next) => mag = next,
            None => return raw,
        }
    }
}

/// Label every `k`-th month: the smallest of 1, 2, 3, 6, 12, 24, 60, 120 whose labels,
/// `slot` units apart, do not crowd each other.
pub fn label_every(slot: f64) -> usize {
    [1usize, 2, 3, 6, 12, 24, 60, 120]
        .into_iter()
        .find(|k| slot * *k as f64 >= 5.5 * CHAR_W)
        .unwrap_or(120)
}

/// Whether month `m` gets a label when every `k`-th month does: the labels fall on
/// calendar boundaries (quarters, halves, years), so they read naturally.
fn labelled(m: Month, k: usize) -> bool {
    if k <= 12 {
        (usize::from(m.month()) - 1) % k == 0
    } else {
        m.month() == 1 && usize::from(m.year()) % (k / 12) == 0
    }
}

fn fmt1(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
}

/// The chart; `zone` names the time zone months are counted in (for the x axis title).
/// `None` when there are no clicks to draw.
pub fn svg(months: &[MonthRow], zone: &str) -> Option<Markup> {
    let bars = bars(months);
    let max = bars.iter().map(|b| b.clicks).max().unwrap_or(0);
    if max == 0 {
        return None;
    }
    let step = nice_step(max);
    let top = max.div_ceil(step) * step;
    let ticks: Vec<u64> = (0..=top / step).map(|i| i * step).collect();
    let tick_chars = group(top).chars().count() as f64;
    // Margins: the y axis title and tick labels on the left, two lines of month labels
    // and the x axis title below, room for value labels above.
    let left = 22.0 + tick_chars * CHAR_W + 10.0;
    let (right, top_margin, bottom) = (12.0, 22.0, 58.0);
    let plot_w = WIDTH - left - right;
    let plot_h = HEIGHT - top_margin - bottom;
    let base = top_margin + plot_h;
    let n = bars.len();
    let slot = plot_w / n as f64;
    let bar_w = (slot * 0.72).max(1.0);
    let k = label_every(slot);
    let widest_value = bars
        .iter()
        .map(|b| group(b.clicks).chars().count())
        .max()
        .unwrap_or(1) as f64;
    let values_fit = slot >= widest_value * (CHAR_W - 0.5) + 4.0;
    let y = |v: u64| base - plot_h * v as f64 / top as f64;
    let first_labelled = bars.iter().position(|b| labelled(b.month, k));
    let title = format!(
        "Human clicks per month, {} to {} ({zone})",
        month_long(bars[0].month),
        month_long(bars[n - 1].month)
    );
    Some(html! {
        svg class="chart" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img"
            aria-labelledby="chart-title" preserveAspectRatio="xMidYMid meet" {
            title id="chart-title" { (title) }
            // Grid lines and y tick labels.
            @for t in &ticks {
                line class={ "grid" @if *t == 0 { " axis" } } x1=(fmt1(left)) x2=(fmt1(WIDTH - right))
                    y1=(fmt1(y(*t))) y2=(fmt1(y(*t))) {}
                text class="tick" x=(fmt1(left - 8.0)) y=(fmt1(y(*t) + 4.0)) text-anchor="end" { (group(*t)) }
            }
            text class="axis-title" transform={ "translate(14 " (fmt1(top_margin + plot_h / 2.0)) ") rotate(-90)" }
                text-anchor="middle" { "Clicks" }
            @for (i, b) in bars.iter().enumerate() {
                @let cx = left + slot * (i as f64 + 0.5);
                @let h = base - y(b.clicks);
                g class="bar" {
                    title { (month_long(b.month)) ": " (group(b.clicks)) " click" @if b.clicks != 1 { "s" } }
                    rect class="hit" x=(fmt1(left + slot * i as f64)) y=(fmt1(top_margin)) width=(fmt1(slot)) height=(fmt1(plot_h)) {}
                    @if b.clicks > 0 {
                        rect class="fill" x=(fmt1(cx - bar_w / 2.0)) y=(fmt1(y(b.clicks))) width=(fmt1(bar_w))
                            height=(fmt1(h.max(1.0))) rx=(fmt1((bar_w / 8.0).min(3.0))) {}
                        @if values_fit {
                            text class="value" x=(fmt1(cx)) y=(fmt1(y(b.clicks) - 5.0)) text-anchor="middle" { (group(b.clicks)) }
                        }
                    }
                }
                @if labelled(b.month, k) {
                    line class="axis" x1=(fmt1(cx)) x2=(fmt1(cx)) y1=(fmt1(base)) y2=(fmt1(base + 4.0)) {}
                    @if k < 12 {
                        text class="tick" x=(fmt1(cx)) y=(fmt1(base + 17.0)) text-anchor="middle" { (month_abbr(b.month)) }
                    }
                    @if k >= 12 || b.month.month() == 1 || Some(i) == first_labelled {
                        text class="tick year" x=(fmt1(cx)) y=(fmt1(base + if k < 12 { 31.0 } else { 17.0 })) text-anchor="middle" { (b.month.year()) }
                    }
                }
            }
            text class="axis-title" x=(fmt1(left + plot_w / 2.0)) y=(fmt1(HEIGHT - 6.0)) text-anchor="middle" {
                "Month (" (zone) ")"
            }
        }
    })
}

/// A latency bucket's bound for people: `1 s`, `5 min`, `2 h`, `7 d`.
pub fn duration_label(s: u32) -> String {
    match s {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

/// The delivery latency histogram (docs/rules.md, "Insights"): one bar per bucket of
/// [`LATENCY_BOUNDS_S`], empty ones too, so the x axis is the same for every campaign;
/// the buckets holding p50, p90 and p99 are marked above their bars. `None` when nothing
/// was delivered.
pub fn latency_svg(l: &Latency) -> Option<Markup> {
    if l.messages == 0 {
        return None;
    }
    let counts: Vec<u64> = LATENCY_BOUNDS_S
        .iter()
        .map(|b| {
            l.histogram
                .iter()
                .find(|h| h.le_s == *b)
                .map_or(0, |h| h.messages)
        })
        .collect();
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    let step = nice_step(max);
    let top = max.div_ceil(step) * step;
    let ticks: Vec<u64> = (0..=top / step).map(|i| i * step).collect();
    let tick_chars = group(top).chars().count() as f64;
    let left = 22.0 + tick_chars * CHAR_W + 10.0;
    // Room above for the percentile marks, below for the bucket labels and axis title.
    let (right, top_margin, bottom) = (12.0, 40.0, 44.0);
    let plot_w = WIDTH - left - right;
    let plot_h = HEIGHT - top_margin - bottom;
    let base = top_margin + plot_h;
    let n = counts.len();
    let slot = plot_w / n as f64;
    let bar_w = slot * 0.72;
    let y = |v: u64| base - plot_h * v as f64 / top as f64;
    let marks = |le: u32| -> Vec<&'static str> {
        [("p50", l.p50_s), ("p90", l.p90_s), ("p99", l.p99_s)]
            .into_iter()
            .filter(|(_, p)| *p == Some(le))
            .map(|(name, _)| name)
            .collect()
    };
    let title = format!(
        "Delivery latency of {} delivered message{}: messages per latency bucket",
        group(l.messages),
        if l.messages == 1 { "" } else { "s" }
    );
    Some(html! {
        svg class="chart latency" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img"
            aria-labelledby="latency-title" preserveAspectRatio="xMidYMid meet" {
            title id="latency-title" { (title) }
            @for t in &ticks {
                line class={ "grid" @if *t == 0 { " axis" } } x1=(fmt1(left)) x2=(fmt1(WIDTH - right))
                    y1=(fmt1(y(*t))) y2=(fmt1(y(*t))) {}
                text class="tick" x=(fmt1(left - 8.0)) y=(fmt1(y(*t) + 4.0)) text-anchor="end" { (group(*t)) }
            }
            text class="axis-title" transform={ "translate(14 " (fmt1(top_margin + plot_h / 2.0)) ") rotate(-90)" }
                text-anchor="middle" { "Messages" }
            @for (i, (le, v)) in LATENCY_BOUNDS_S.iter().zip(&counts).enumerate() {
                @let cx = left + slot * (i as f64 + 0.5);
                @let m = marks(*le);
                g class={ "bar" @if !m.is_empty() { " marked" } } data-le=(le) {
                    title { "≤ " (duration_label(*le)) ": " (group(*v)) " message" @if *v != 1 { "s" }
                        @if !m.is_empty() { " (" (m.join(", ")) ")" } }
                    rect class="hit" x=(fmt1(left + slot * i as f64)) y=(fmt1(top_margin)) width=(fmt1(slot)) height=(fmt1(plot_h)) {}
                    @if *v > 0 {
                        rect class="fill" x=(fmt1(cx - bar_w / 2.0)) y=(fmt1(y(*v))) width=(fmt1(bar_w))
                            height=(fmt1((base - y(*v)).max(1.0))) rx=(fmt1((bar_w / 8.0).min(3.0))) {}
                    }
                    @if !m.is_empty() {
                        line class="pmark" x1=(fmt1(cx)) x2=(fmt1(cx)) y1=(fmt1(top_margin - 6.0)) y2=(fmt1(base)) {}
                        @for (k, name) in m.iter().enumerate() {
                            text class="plabel" x=(fmt1(cx)) y=(fmt1(top_margin - 10.0 - 12.0 * k as f64)) text-anchor="middle" { (name) }
                        }
                    }
                }
                text class="tick" x=(fmt1(cx)) y=(fmt1(base + 16.0)) text-anchor="middle" { (short_duration(*le)) }
            }
            text class="axis-title" x=(fmt1(left + plot_w / 2.0)) y=(fmt1(HEIGHT - 6.0)) text-anchor="middle" {
                "Latency, up to (status time − submit time)"
            }
        }
    })
}

/// A bound as short as the x axis needs it: `30s`, `5m`, `6h`, `3d`.
fn short_duration(s: u32) -> String {
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(list: &[(&str, u64)]) -> Vec<MonthRow> {
        list.iter()
            .map(|(m, c)| MonthRow {
                month: (*m).to_owned(),
                clicks: *c,
            })
            .collect()
    }

    fn months(n: usize, clicks: impl Fn(usize) -> u64) -> Vec<MonthRow> {
        let mut m = Month::new(2024, 1);
        let mut out = Vec::new();
        for i in 0..n {
            out.push(MonthRow {
                month: m.to_string(),
                clicks: clicks(i),
            });
            m = m.next();
        }
        out
    }

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(1), 1);
        assert_eq!(nice_step(3), 1);
        assert_eq!(nice_step(7), 2);
        assert_eq!(nice_step(10), 5);
        assert_eq!(nice_step(38), 10);
        assert_eq!(nice_step(412), 200);
        assert_eq!(nice_step(1_999), 500);
        assert_eq!(nice_step(u64::MAX), 5_000_000_000_000_000_000);
    }

    #[test]
    fn gaps_become_zero_bars() {
        let b = bars(&rows(&[("2025-11", 4), ("2026-02", 9)]));
        let got: Vec<(String, u64)> = b.iter().map(|b| (b.month.to_string(), b.clicks)).collect();
        assert_eq!(
            got,
            [
                ("2025-11".to_owned(), 4),
                ("2025-12".to_owned(), 0),
                ("2026-01".to_owned(), 0),
                ("2026-02".to_owned(), 9)
            ]
        );
        assert!(bars(&[]).is_empty());
        // Decades apart: the latest MAX_MONTHS months.
        let b = bars(&rows(&[("1999-01", 1), ("2026-12", 2)]));
        assert_eq!(b.len(), MAX_MONTHS);
        assert_eq!(b.last().unwrap().clicks, 2);
        assert_eq!(b.first().unwrap().month.to_string(), "2017-01");
    }

    #[test]
    fn no_clicks_no_chart() {
        assert!(svg(&[], "UTC").is_none());
        assert!(svg(&rows(&[("2026-01", 0)]), "UTC").is_none());
    }

    fn count(s: &str, pat: &str) -> usize {
        s.matches(pat).count()
    }

    #[test]
    fn one_month() {
        let s = svg(&rows(&[("2026-03", 3)]), "Europe/Riga")
            .unwrap()
            .into_string();
        assert_eq!(count(&s, "class=\"fill\""), 1);
        assert!(s.contains(">Mar</text>"), "{s}");
        assert!(s.contains(">2026</text>"), "{s}");
        assert!(s.contains(">Month (Europe/Riga)</text>"), "{s}");
        assert!(s.contains(">Clicks</text>"), "{s}");
        assert!(s.contains("<title>March 2026: 3 clicks</title>"), "{s}");
        // The value printed on the bar; ticks 0..3 by 1.
        assert!(s.contains("class=\"value\""), "{s}");
        assert_eq!(count(&s, "class=\"grid"), 4);
    }

    /// For 1 to 36 months (and more), labels never crowd each other, there are a
    /// handful of them, and every bar has its value in a title.
    #[test]
    fn holds_up_from_1_to_36_months() {
        for n in [1, 2, 3, 6, 12, 13, 24, 36, 60, 120] {
            let data = months(n, |i| (i as u64 * 37) % 1000 + 1);
            let s = svg(&data, "UTC").unwrap().into_string();
            assert_eq!(count(&s, "<g class=\"bar\">"), n, "{n}");
            assert_eq!(count(&s, "<title"), n + 1, "{n}");
            // The x of each month or year label (a year under a month shares its x).
            let mut xs: Vec<f64> = s
                .split("<text class=\"tick")
                .skip(1)
                .filter(|t| t.split('>').next().unwrap().contains("\"middle\""))
                .filter_map(|t| t.split("x=\"").nth(1)?.split('"').next()?.parse().ok())
                .collect();
            xs.dedup();
            assert!(!xs.is_empty(), "{n}: no month label");
            assert!(xs.len() <= 13, "{n}: {} month labels", xs.len());
            for w in xs.windows(2) {
                assert!(w[1] - w[0] >= 5.5 * CHAR_W, "{n}: labels {w:?} crowd");
            }
            // Values on the bars only while they fit.
            if n <= 12 {
                assert!(s.contains("class=\"value\""), "{n}");
            }
            if n >= 36 {
                assert!(!s.contains("class=\"value\""), "{n}");
            }
        }
        // 36 months: quarterly labels, year under each January.
        let s = svg(&months(36, |_| 5), "UTC").unwrap().into_string();
        assert!(s.contains(">Jan</text>") && s.contains(">Apr</text>"));
        assert!(!s.contains(">Feb</text>"));
        for y in ["2024", "2025", "2026"] {
            assert!(s.contains(&format!(">{y}</text>")), "{y}");
        }
    }

    #[test]
    fn big_numbers_are_grouped() {
        let s = svg(&rows(&[("2026-01", 1_234_567), ("2026-02", 10)]), "UTC")
            .unwrap()
            .into_string();
        assert!(s.contains(">1,500,000</text>"), "{s}");
        assert!(s.contains("January 2026: 1,234,567 clicks"), "{s}");
    }

    #[test]
    fn latency_bars_and_percentile_marks() {
        use smsreport_core::insights::LatencyBucket;
        let none = Latency {
            messages: 0,
            p50_s: None,
            p90_s: None,
            p99_s: None,
            histogram: vec![],
        };
        assert!(latency_svg(&none).is_none());
        let l = Latency {
            messages: 5,
            p50_s: Some(60),
            p90_s: Some(604_800),
            p99_s: Some(604_800),
            histogram: vec![
                LatencyBucket {
                    le_s: 1,
                    messages: 2,
                },
                LatencyBucket {
                    le_s: 60,
                    messages: 1,
                },
                LatencyBucket {
                    le_s: 300,
                    messages: 1,
                },
                LatencyBucket {
                    le_s: 604_800,
                    messages: 1,
                },
            ],
        };
        let s = latency_svg(&l).unwrap().into_string();
        assert_eq!(count(&s, "<g class=\"bar"), 16);
        assert_eq!(count(&s, "class=\"fill\""), 4);
        assert_eq!(count(&s, "class=\"pmark\""), 2);
        assert!(
            s.contains(">p50</text>") && s.contains(">p99</text>"),
            "{s}"
        );
        assert!(
            s.contains("<title>≤ 7 d: 1 message (p90, p99)</title>"),
            "{s}"
        );
        assert!(s.contains("<title>≤ 1 s: 2 messages</title>"), "{s}");
        assert!(s.contains(">5m</text>") && s.contains(">7d</text>"), "{s}");
        assert_eq!(duration_label(1800), "30 min");
        assert_eq!(duration_label(21_600), "6 h");
    }
}
