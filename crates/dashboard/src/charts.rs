//! Charts drawn with plotters on the server: SVG for pages and reports, PNG (the same drawing
//! on plotters' bitmap backend) for `modelwatch report --png`. Text is drawn with the DejaVu Sans
//! font compiled into the binary, so nothing is loaded at run time; plotters escapes the text it
//! writes into SVG (`<` becomes `&lt;`), and a test checks it.

use plotters::coord::combinators::BindKeyPoints;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::sync::Once;

const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Registers the embedded font with plotters (once per process).
pub fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            // The font is compiled in and known to parse; a failure would show in every test.
            let _ = plotters::style::register_font(FONT, style, FONT_BYTES);
        }
    });
}

/// The series colours, in order.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(37, 99, 235),  // blue
    RGBColor(234, 88, 12),  // orange
    RGBColor(22, 163, 74),  // green
    RGBColor(147, 51, 234), // purple
    RGBColor(220, 38, 38),  // red
    RGBColor(8, 145, 178),  // cyan
    RGBColor(202, 138, 4),  // amber
    RGBColor(71, 85, 105),  // slate
];

const GRID: RGBColor = RGBColor(229, 231, 235);
const AXIS: RGBColor = RGBColor(107, 114, 128);
const BASELINE: RGBColor = RGBColor(55, 65, 81);
const THRESHOLD: RGBColor = RGBColor(220, 38, 38);
const PARTIAL_GROUND: RGBColor = RGBColor(229, 231, 235);
/// The legend of the grey ground under partial windows.
pub const PARTIAL_LABEL: &str = "partial window";

/// How a legend entry is drawn.
#[derive(Debug, Clone, Copy)]
enum Mark {
    Line(RGBColor),
    Band(RGBColor),
    Bar(RGBColor),
    Dashed(RGBColor),
    Ground,
}

/// A value for a hover text: whole numbers as such, small ones with four decimals.
pub fn value_text(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e12 {
        format!("{v:.0}")
    } else if v.abs() < 100.0 {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        crate::data::short(v)
    }
}

/// A window for people: `2026-11-25 15:00 → 16:00 UTC`, `2026-11-25 → 2026-11-26 UTC`.
pub fn window_label(start: i64, window_micros: i64) -> String {
    let a = modelwatch_core::Timestamp(start).to_rfc3339();
    let b = modelwatch_core::Timestamp(start + window_micros).to_rfc3339();
    let day = |s: &str| s.get(..10).unwrap_or(s).to_string();
    let hm = |s: &str| s.get(11..16).unwrap_or("").to_string();
    if window_micros % 86_400_000_000 == 0 {
        format!("{} → {} UTC", day(&a), day(&b))
    } else if day(&a) == day(&b) {
        format!("{} {} → {} UTC", day(&a), hm(&a), hm(&b))
    } else {
        format!("{} {} → {} {} UTC", day(&a), hm(&a), day(&b), hm(&b))
    }
}

/// Escapes text for an SVG element's content or attribute.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// The SVG with the hover rectangles added last (on top), each holding its `<title>`.
pub fn with_hovers(svg: String, hovers: &[Hover]) -> String {
    if hovers.is_empty() {
        return svg;
    }
    let mut extra = String::new();
    for h in hovers {
        extra.push_str(&format!(
            "<rect class=\"hover\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#000\" fill-opacity=\"0\"><title>{}</title></rect>\n",
            h.x0.min(h.x1),
            h.y0.min(h.y1),
            (h.x1 - h.x0).abs().max(1),
            (h.y1 - h.y0).abs().max(1),
            xml_escape(&h.title)
        ));
    }
    match svg.rfind("</svg>") {
        Some(i) => format!("{}{}{}", &svg[..i], extra, &svg[i..]),
        None => svg,
    }
}

/// Draws `entries` in rows across the top of `area` (under a title line when `title` is not
/// empty), outside the plot so that no legend covers data; returns the height used.
fn legend_rows<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    entries: &[(String, Mark)],
    draw: bool,
) -> Result<u32, String> {
    let (w, _) = area.dim_in_pixel();
    let font = (FONT, 13).into_font().color(&AXIS);
    let mut y = 6i32;
    if !title.is_empty() {
        if draw {
            area.draw_text(
                title,
                &(FONT, 17).into_font().style(FontStyle::Bold).color(&BLACK),
                (10, y),
            )
            .map_err(err)?;
        }
        y += 20;
    }
    let mut x = 10i32;
    let row_h = 16;
    let mut used = false;
    for (name, mark) in entries {
        let (tw, _) = area.estimate_text_size(name, &font).map_err(err)?;
        let item = 16 + tw as i32 + 14;
        if used && x + item > w as i32 - 8 {
            x = 10;
            y += row_h;
        }
        used = true;
        if draw {
            let my = y + 5;
            match *mark {
                Mark::Line(c) => area
                    .draw(&PathElement::new(
                        vec![(x, my), (x + 12, my)],
                        c.stroke_width(2),
                    ))
                    .map_err(err)?,
                Mark::Band(c) => area
                    .draw(&Rectangle::new(
                        [(x, my - 5), (x + 12, my + 5)],
                        c.mix(0.15).filled(),
                    ))
                    .map_err(err)?,
                Mark::Bar(c) => area
                    .draw(&Rectangle::new(
                        [(x, my - 4), (x + 12, my + 4)],
                        c.mix(0.8).filled(),
                    ))
                    .map_err(err)?,
                Mark::Dashed(c) => {
                    for (a, b) in [(x, x + 4), (x + 8, x + 12)] {
                        area.draw(&PathElement::new(vec![(a, my), (b, my)], c.stroke_width(1)))
                            .map_err(err)?;
                    }
                }
                Mark::Ground => area
                    .draw(&Rectangle::new(
                        [(x, my - 5), (x + 12, my + 5)],
                        PARTIAL_GROUND.filled(),
                    ))
                    .map_err(err)?,
            }
            area.draw_text(name, &font, (x + 16, y)).map_err(err)?;
        }
        x += item;
    }
    if used {
        y += row_h;
    }
    Ok((y + 2).max(8) as u32)
}

/// One line of a time chart: a value per window (`None`: no value, the line breaks), and an
/// optional confidence band drawn under it.
#[derive(Debug, Clone)]
pub struct Line {
    pub name: String,
    pub color: RGBColor,
    pub points: Vec<(i64, Option<f64>)>,
    pub band: Vec<(i64, Option<(f64, f64)>)>,
    /// What the band is, after the line's name in the legend and hover text (`95% CI` when
    /// `None`).
    pub band_label: Option<String>,
}

impl Line {
    fn band_name(&self) -> &str {
        self.band_label.as_deref().unwrap_or("95% CI")
    }
}

/// The y axis of a chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum YScale {
    /// Values in [0, 1]: the axis zooms in on the data but never leaves [0, 1].
    Unit,
    /// From zero to a little above the largest value.
    FromZero,
    /// Around the data.
    Auto,
}

/// A chart of values per event-time window. x is microseconds since the epoch.
#[derive(Debug, Clone)]
pub struct TimeChart {
    pub title: String,
    pub from: i64,
    pub to: i64,
    pub window_micros: i64,
    pub y: YScale,
    pub lines: Vec<Line>,
    /// Bars, one per window (prediction volume).
    pub bars: Option<Line>,
    /// A horizontal reference line: the baseline from the reference dataset.
    pub baseline: Option<f64>,
    /// The legend of the baseline line.
    pub baseline_label: String,
    /// Alert rules' thresholds on the value this chart draws: a dashed line each.
    pub thresholds: Vec<Threshold>,
    /// Starts of the windows still filling (`"partial": true`): drawn on a grey ground and
    /// named in their hover text.
    pub partial: Vec<i64>,
}

/// A threshold rule drawn on the chart of the signal it watches.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The legend: the rule's name and condition (`accuracy-floor: < 0.8`).
    pub label: String,
    pub value: f64,
}

/// A transparent rectangle over part of a chart whose `<title>` the browser shows on hover:
/// values without a script.
#[derive(Debug, Clone, PartialEq)]
pub struct Hover {
    pub x0: i32,
    pub y0: i32,
    pub x1: i32,
    pub y1: i32,
    pub title: String,
}

impl TimeChart {
    /// The legend names of what the chart draws, in order: lines (with `95% CI` after a line
    /// that has a band), bars, `baseline`, the rules' thresholds (the partial windows' grey
    /// ground is in the legend, not a series).
    pub fn series_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        for l in &self.lines {
            out.push(l.name.clone());
            if l.band.iter().any(|(_, b)| b.is_some()) {
                out.push(format!("{} {}", l.name, l.band_name()));
            }
        }
        if let Some(b) = &self.bars {
            out.push(b.name.clone());
        }
        if self.baseline.is_some() {
            out.push(self.baseline_label.clone());
        }
        out.extend(self.thresholds.iter().map(|t| t.label.clone()));
        out
    }

    /// What the chart draws, as legend entries.
    fn legend_entries(&self) -> Vec<(String, Mark)> {
        let mut out = Vec::new();
        for l in &self.lines {
            out.push((l.name.clone(), Mark::Line(l.color)));
            if l.band.iter().any(|(_, b)| b.is_some()) {
                out.push((format!("{} {}", l.name, l.band_name()), Mark::Band(l.color)));
            }
        }
        if let Some(b) = &self.bars {
            out.push((b.name.clone(), Mark::Bar(b.color)));
        }
        if self.baseline.is_some() {
            out.push((self.baseline_label.clone(), Mark::Dashed(BASELINE)));
        }
        for t in &self.thresholds {
            out.push((t.label.clone(), Mark::Dashed(THRESHOLD)));
        }
        if !self.partial.is_empty() {
            out.push((PARTIAL_LABEL.to_string(), Mark::Ground));
        }
        out
    }

    /// The hover text of the window starting at `x`: its span, then every value drawn there.
    fn hover_text(&self, x: i64) -> String {
        let mut t = window_label(x, self.window_micros);
        if self.partial.contains(&x) {
            t.push_str(" (partial: still filling)");
        }
        for l in &self.lines {
            let v = l.points.iter().find(|p| p.0 == x).and_then(|p| p.1);
            let band = l.band.iter().find(|p| p.0 == x).and_then(|p| p.1);
            t.push_str(&format!("\n{}: ", l.name));
            match (v, band) {
                (Some(v), Some((lo, hi))) => t.push_str(&format!(
                    "{} ({} {} – {})",
                    value_text(v),
                    l.band_name(),
                    value_text(lo),
                    value_text(hi)
                )),
                (Some(v), None) => t.push_str(&value_text(v)),
                (None, _) => t.push('—'),
            }
        }
        if let Some(b) = &self.bars {
            let v = b.points.iter().find(|p| p.0 == x).and_then(|p| p.1);
            t.push_str(&format!(
                "\n{}: {}",
                b.name,
                v.map(value_text).unwrap_or("—".into())
            ));
        }
        if let Some(b) = self.baseline {
            t.push_str(&format!("\n{}: {}", self.baseline_label, value_text(b)));
        }
        for th in &self.thresholds {
            t.push_str(&format!("\n{}", th.label));
        }
        t
    }

    fn y_range(&self) -> (f64, f64) {
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        let mut see = |v: f64| {
            if v.is_finite() {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        };
        for l in self.lines.iter().chain(self.bars.iter()) {
            l.points.iter().filter_map(|p| p.1).for_each(&mut see);
            for (a, b) in l.band.iter().filter_map(|p| p.1) {
                see(a);
                see(b);
            }
        }
        if let Some(b) = self.baseline {
            see(b);
        }
        for t in &self.thresholds {
            see(t.value);
        }
        if !lo.is_finite() {
            return match self.y {
                YScale::Unit => (0.0, 1.0),
                _ => (0.0, 1.0),
            };
        }
        match self.y {
            YScale::Unit => {
                let pad = ((hi - lo) * 0.1).max(0.02);
                ((lo - pad).max(0.0), (hi + pad).min(1.0))
            }
            YScale::FromZero => (0.0, if hi > 0.0 { hi * 1.1 } else { 1.0 }),
            YScale::Auto => {
                let pad = ((hi - lo) * 0.1).max(hi.abs() * 0.05).max(1e-9);
                (lo - pad, hi + pad)
            }
        }
    }
}

/// A horizontal bar chart of two distributions over the same bins, overlaid.
#[derive(Debug, Clone)]
pub struct Overlay {
    pub title: String,
    pub bins: Vec<String>,
    pub reference: Vec<f64>,
    pub current: Vec<f64>,
}

/// `MM-DD HH:MM` for windows under a day, `MM-DD` else.
pub fn short_time(micros: i64, window_micros: i64) -> String {
    let s = modelwatch_core::Timestamp(micros).to_rfc3339();
    if window_micros < 86_400_000_000 {
        s.get(5..16).unwrap_or(&s).replace('T', " ")
    } else {
        s.get(5..10).unwrap_or(&s).to_string()
    }
}

/// Tick positions on round times (hours, midnights, Mondays), at most about seven, and the
/// step between them.
pub fn time_ticks(from: i64, to: i64) -> (Vec<i64>, i64) {
    const H: i64 = 3_600_000_000;
    let steps = [1, 2, 3, 6, 12, 24, 48, 96, 168, 336, 672, 1344, 2688, 5376];
    let len = (to - from).max(1);
    let step_h = steps
        .iter()
        .copied()
        .find(|s| len / (s * H) <= 7)
        .unwrap_or(8760);
    let window = modelwatch_core::Window::parse(&format!("{step_h}h"))
        .unwrap_or(modelwatch_core::Window::WEEK);
    let step = window.micros();
    let mut t = window.start_of(modelwatch_core::Timestamp(from)).0;
    let mut out = Vec::new();
    while t <= to {
        if t >= from {
            out.push(t);
        }
        t += step;
    }
    (out, step)
}

fn runs<T: Copy>(points: &[(i64, Option<T>)]) -> Vec<Vec<(i64, T)>> {
    let mut out: Vec<Vec<(i64, T)>> = Vec::new();
    let mut cur = Vec::new();
    for &(x, v) in points {
        match v {
            Some(v) => cur.push((x, v)),
            None if !cur.is_empty() => out.push(std::mem::take(&mut cur)),
            None => {}
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

fn draw_time<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &TimeChart,
) -> Result<Vec<Hover>, String> {
    root.fill(&WHITE).map_err(err)?;
    let entries = c.legend_entries();
    let top = legend_rows(root, &c.title, &entries, false)?;
    let (head, body) = root.split_vertically(top);
    legend_rows(&head, &c.title, &entries, true)?;
    let (y0, y1) = c.y_range();
    let half = c.window_micros / 2;
    let to = c.to.max(c.from + 1);
    let (ticks, step) = time_ticks(c.from, to);
    let mut chart = ChartBuilder::on(&body)
        .margin(8)
        .margin_top(2)
        .margin_right(16)
        .x_label_area_size(24)
        .y_label_area_size(48)
        .build_cartesian_2d((c.from..to).with_key_points(ticks), y0..y1)
        .map_err(err)?;
    let w = c.window_micros;
    chart
        .configure_mesh()
        .y_labels(5)
        .x_label_formatter(&|x| short_time(*x, step))
        // A tick at zero comes out of the axis' arithmetic as ±1e-17 or so: zero it.
        .y_label_formatter(&|y| crate::data::short(if y.abs() < 1e-12 { 0.0 } else { *y }))
        .label_style((FONT, 11).into_font().color(&AXIS))
        .axis_style(AXIS)
        .bold_line_style(GRID)
        .light_line_style(WHITE)
        .draw()
        .map_err(err)?;
    // Partial windows on a grey ground, under everything else.
    chart
        .draw_series(
            c.partial
                .iter()
                .filter(|&&x| x + w > c.from && x < to)
                .map(|&x| {
                    Rectangle::new(
                        [(x.max(c.from), y0), ((x + w).min(to), y1)],
                        PARTIAL_GROUND.mix(0.6).filled(),
                    )
                }),
        )
        .map_err(err)?;
    if let Some(b) = &c.bars {
        let pad = (c.window_micros / 10).max(1);
        chart
            .draw_series(b.points.iter().filter_map(|&(x, v)| {
                v.map(|v| {
                    Rectangle::new(
                        [(x + pad, 0.0), (x + w - pad, v)],
                        b.color.mix(0.8).filled(),
                    )
                })
            }))
            .map_err(err)?;
    }
    for l in &c.lines {
        let color = l.color;
        for run in runs(&l.band) {
            let mut poly: Vec<(i64, f64)> =
                run.iter().map(|&(x, (_, hi))| (x + half, hi)).collect();
            if run.len() == 1 {
                // One window: a band as wide as the window.
                let (x, (lo, hi)) = run[0];
                poly = vec![(x, hi), (x + w, hi), (x + w, lo), (x, lo)];
            } else {
                poly.extend(run.iter().rev().map(|&(x, (lo, _))| (x + half, lo)));
            }
            chart
                .draw_series(std::iter::once(Polygon::new(
                    poly,
                    color.mix(0.15).filled(),
                )))
                .map_err(err)?;
        }
        for run in runs(&l.points) {
            let pts: Vec<(i64, f64)> = run.iter().map(|&(x, v)| (x + half, v)).collect();
            if pts.len() == 1 {
                chart
                    .draw_series(std::iter::once(Circle::new(pts[0], 3, color.filled())))
                    .map_err(err)?;
            } else {
                chart
                    .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                    .map_err(err)?;
            }
        }
    }
    if let Some(b) = c.baseline {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(c.from, b), (to, b)],
                6,
                4,
                BASELINE.stroke_width(1),
            ))
            .map_err(err)?;
    }
    for t in &c.thresholds {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(c.from, t.value), (to, t.value)],
                4,
                3,
                THRESHOLD.stroke_width(1),
            ))
            .map_err(err)?;
    }
    // One hover column per window that has anything drawn.
    let mut xs: Vec<i64> = c
        .lines
        .iter()
        .chain(c.bars.iter())
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .chain(c.partial.iter().copied())
        .filter(|&x| x + w > c.from && x < to)
        .collect();
    xs.sort_unstable();
    xs.dedup();
    let hovers = xs
        .into_iter()
        .map(|x| {
            let (x0, y0p) = chart.backend_coord(&(x.max(c.from), y1));
            let (x1, y1p) = chart.backend_coord(&((x + w).min(to), y0));
            Hover {
                x0,
                y0: y0p,
                x1,
                y1: y1p,
                title: c.hover_text(x),
            }
        })
        .collect();
    root.present().map_err(err)?;
    Ok(hovers)
}

fn draw_overlay<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    o: &Overlay,
) -> Result<Vec<Hover>, String> {
    root.fill(&WHITE).map_err(err)?;
    let (ref_color, cur_color) = (PALETTE[7].mix(0.35), PALETTE[0].mix(0.55));
    let entries = [
        ("reference".to_string(), Mark::Band(PALETTE[7])),
        ("current".to_string(), Mark::Bar(PALETTE[0])),
    ];
    let top = legend_rows(root, &o.title, &entries, false)?;
    let (head, body) = root.split_vertically(top);
    legend_rows(&head, &o.title, &entries, true)?;
    let n = o.bins.len().max(1) as i32;
    let hi = o
        .reference
        .iter()
        .chain(&o.current)
        .fold(0.0f64, |a, &b| a.max(b))
        .max(0.01)
        * 1.08;
    let longest = o.bins.iter().map(|b| b.chars().count()).max().unwrap_or(4) as u32;
    let mut chart = ChartBuilder::on(&body)
        .margin(8)
        .margin_top(2)
        .margin_right(16)
        .x_label_area_size(22)
        .y_label_area_size((longest * 7 + 12).clamp(40, 170))
        .build_cartesian_2d(0.0..hi, (0..n).into_segmented())
        .map_err(err)?;
    let bins = &o.bins;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(o.bins.len())
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => bins
                .get(*i as usize)
                .map(|s| truncate(s, 24))
                .unwrap_or_default(),
            _ => String::new(),
        })
        .x_labels(5)
        .x_label_formatter(&|x| format!("{:.0}%", x * 100.0))
        .label_style((FONT, 11).into_font().color(&AXIS))
        .axis_style(AXIS)
        .bold_line_style(GRID)
        .light_line_style(WHITE)
        .draw()
        .map_err(err)?;
    // The reference wide and pale, the current window narrower on top of it. Rectangles in bin
    // order rather than plotters' `Histogram`, which collects its bars in a `HashMap` and so
    // writes them in another order on every render: the same data must give the same page.
    for (values, color, margin) in [(&o.reference, ref_color, 2), (&o.current, cur_color, 6)] {
        chart
            .draw_series(values.iter().enumerate().map(|(i, &v)| {
                let i = i as i32;
                let mut bar = Rectangle::new(
                    [
                        (v, SegmentValue::Exact(i)),
                        (0.0, SegmentValue::Exact(i + 1)),
                    ],
                    color.filled(),
                );
                bar.set_margin(margin, margin, 0, 0);
                bar
            }))
            .map_err(err)?;
    }
    let pct = |v: Option<&f64>| v.map_or("—".to_string(), |v| format!("{:.1}%", v * 100.0));
    let hovers = (0..o.bins.len())
        .map(|i| {
            let i32_ = i as i32;
            let (x0, y0) = chart.backend_coord(&(0.0, SegmentValue::Exact(i32_ + 1)));
            let (x1, y1) = chart.backend_coord(&(hi, SegmentValue::Exact(i32_)));
            Hover {
                x0,
                y0,
                x1,
                y1,
                title: format!(
                    "{}: {}\nreference: {}\ncurrent: {}",
                    o.title,
                    o.bins[i],
                    pct(o.reference.get(i)),
                    pct(o.current.get(i))
                ),
            }
        })
        .collect();
    root.present().map_err(err)?;
    Ok(hovers)
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

/// An SVG document of `w` x `h` drawn by `draw`, with the hovers `draw` reports (the one
/// frame of every SVG chart: the font, the backend, the hover rectangles).
fn svg_document(
    w: u32,
    h: u32,
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<Vec<Hover>, String>,
) -> Result<String, String> {
    register_font();
    let mut buf = String::new();
    let hovers = {
        let root = SVGBackend::with_string(&mut buf, (w, h)).into_drawing_area();
        draw(&root)?
    };
    Ok(with_hovers(buf, &hovers))
}

/// A small line without axes (the overview's trend of a model's headline metric), with the
/// baseline dashed; each point's value shows on hover.
pub fn sparkline_svg(
    points: &[(i64, Option<f64>)],
    baseline: Option<f64>,
    window_micros: i64,
    w: u32,
    h: u32,
) -> Result<String, String> {
    svg_document(w, h, |root| {
        let mut hovers = Vec::new();
        let c = TimeChart {
            title: String::new(),
            from: points.first().map(|p| p.0).unwrap_or(0),
            to: points
                .last()
                .map(|p| p.0 + window_micros.max(1))
                .unwrap_or(1),
            window_micros: window_micros.max(1),
            y: YScale::Unit,
            lines: vec![Line {
                name: String::new(),
                color: PALETTE[0],
                points: points.to_vec(),
                band: Vec::new(),
                band_label: None,
            }],
            bars: None,
            baseline,
            baseline_label: String::new(),
            thresholds: Vec::new(),
            partial: Vec::new(),
        };
        let (y0, y1) = c.y_range();
        let mut chart = ChartBuilder::on(root)
            .margin(3)
            .build_cartesian_2d(c.from..c.to.max(c.from + 1), y0..y1)
            .map_err(err)?;
        if let Some(b) = baseline {
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(c.from, b), (c.to, b)],
                    3,
                    3,
                    AXIS.stroke_width(1),
                ))
                .map_err(err)?;
        }
        let half = c.window_micros / 2;
        for run in runs(points) {
            let run: Vec<(i64, f64)> = run.into_iter().map(|(x, v)| (x + half, v)).collect();
            chart
                .draw_series(LineSeries::new(run, PALETTE[0].stroke_width(2)))
                .map_err(err)?;
        }
        for &(x, v) in points {
            let Some(v) = v else { continue };
            let (x0, y0p) = chart.backend_coord(&(x, y1));
            let (x1, y1p) = chart.backend_coord(&(x + c.window_micros, y0));
            let mut title = format!("{}: {}", window_label(x, c.window_micros), value_text(v));
            if let Some(b) = baseline {
                title.push_str(&format!("\nbaseline: {}", value_text(b)));
            }
            hovers.push(Hover {
                x0,
                y0: y0p,
                x1,
                y1: y1p,
                title,
            });
        }
        root.present().map_err(err)?;
        Ok(hovers)
    })
}

/// A chart as an SVG document (a string to inline into HTML), values on hover.
pub fn time_svg(c: &TimeChart, w: u32, h: u32) -> Result<String, String> {
    svg_document(w, h, |root| draw_time(root, c))
}

/// The height an overlay of `bins` bins needs.
pub fn overlay_height(bins: usize) -> u32 {
    (bins as u32 * 18 + 80).clamp(150, 430)
}

/// A distribution overlay as an SVG document, shares on hover.
pub fn overlay_svg(o: &Overlay, w: u32) -> Result<String, String> {
    svg_document(w, overlay_height(o.bins.len()), |root| {
        draw_overlay(root, o)
    })
}

/// A chart as a PNG file.
pub fn time_png(c: &TimeChart, w: u32, h: u32, path: &std::path::Path) -> Result<(), String> {
    register_font();
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    draw_time(&root, c).map(|_| ())
}

/// A distribution overlay as a PNG file.
pub fn overlay_png(o: &Overlay, w: u32, path: &std::path::Path) -> Result<(), String> {
    register_font();
    let root = BitMapBackend::new(path, (w, overlay_height(o.bins.len()))).into_drawing_area();
    draw_overlay(&root, o).map(|_| ())
}

/// One bin of a reliability diagram (the API's `reliability`).
#[derive(Debug, Clone, PartialEq)]
pub struct ReliabilityBin {
    pub low: f64,
    pub high: f64,
    pub count: u64,
    pub mean_predicted: f64,
    pub fraction_positive: f64,
}

/// A reliability (calibration) diagram: the share of positives against the mean score per
/// score bin, the diagonal of a calibrated model dashed; each bin's numbers on hover.
pub fn reliability_svg(
    title: &str,
    bins: &[ReliabilityBin],
    w: u32,
    h: u32,
) -> Result<String, String> {
    svg_document(w, h, |root| {
        let mut hovers = Vec::new();
        root.fill(&WHITE).map_err(err)?;
        let entries = [
            ("share of positives".to_string(), Mark::Line(PALETTE[0])),
            ("perfectly calibrated".to_string(), Mark::Dashed(BASELINE)),
        ];
        let top = legend_rows(root, title, &entries, false)?;
        let (head, body) = root.split_vertically(top);
        legend_rows(&head, title, &entries, true)?;
        let mut chart = ChartBuilder::on(&body)
            .margin(8)
            .margin_top(2)
            .margin_right(16)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..1.0f64, 0.0..1.0f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("mean score in the bin")
            .y_desc("share of positives")
            .x_labels(6)
            .y_labels(6)
            .label_style((FONT, 11).into_font().color(&AXIS))
            .axis_desc_style((FONT, 11).into_font().color(&AXIS))
            .axis_style(AXIS)
            .bold_line_style(GRID)
            .light_line_style(WHITE)
            .draw()
            .map_err(err)?;
        chart
            .draw_series(DashedLineSeries::new(
                vec![(0.0, 0.0), (1.0, 1.0)],
                6,
                4,
                BASELINE.stroke_width(1),
            ))
            .map_err(err)?;
        let pts: Vec<(f64, f64)> = bins
            .iter()
            .map(|b| (b.mean_predicted, b.fraction_positive))
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), PALETTE[0].stroke_width(2)))
            .map_err(err)?;
        let most = bins.iter().map(|b| b.count).max().unwrap_or(1).max(1) as f64;
        chart
            .draw_series(bins.iter().map(|b| {
                // Bigger dots for bins holding more rows.
                let r = 3.0 + 4.0 * (b.count as f64 / most).sqrt();
                Circle::new(
                    (b.mean_predicted, b.fraction_positive),
                    r as i32,
                    PALETTE[0].filled(),
                )
            }))
            .map_err(err)?;
        for b in bins {
            let (x0, y0) = chart.backend_coord(&(b.low, 1.0));
            let (x1, y1) = chart.backend_coord(&(b.high, 0.0));
            hovers.push(Hover {
                x0,
                y0,
                x1,
                y1,
                title: format!(
                    "scores in ({}, {}]: {} rows\nmean score: {}\nshare of positives: {}",
                    value_text(b.low),
                    value_text(b.high),
                    b.count,
                    value_text(b.mean_predicted),
                    value_text(b.fraction_positive)
                ),
            });
        }
        root.present().map_err(err)?;
        Ok(hovers)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000_000;

    fn chart(name: &str) -> TimeChart {
        TimeChart {
            title: name.into(),
            from: 0,
            to: 4 * H,
            window_micros: H,
            y: YScale::Unit,
            lines: vec![Line {
                name: name.into(),
                color: PALETTE[0],
                points: vec![
                    (0, Some(0.9)),
                    (H, Some(0.8)),
                    (2 * H, None),
                    (3 * H, Some(0.7)),
                ],
                band: vec![
                    (0, Some((0.85, 0.95))),
                    (H, Some((0.75, 0.85))),
                    (2 * H, None),
                    (3 * H, Some((0.6, 0.8))),
                ],
                band_label: None,
            }],
            bars: None,
            baseline: Some(0.92),
            baseline_label: "baseline".into(),
            thresholds: Vec::new(),
            partial: Vec::new(),
        }
    }

    #[test]
    fn every_window_has_its_values_on_hover_and_rules_are_drawn() {
        let mut c = chart("f1");
        c.thresholds.push(Threshold {
            label: "rule floor: < 0.75".into(),
            value: 0.75,
        });
        c.partial.push(3 * H);
        let svg = time_svg(&c, 600, 240).unwrap();
        // One hover rectangle per window of the series (2 has no value: "—").
        assert_eq!(svg.matches("<title>").count(), 4, "{svg}");
        assert!(svg.contains("02:00 → 03:00 UTC\nf1: —\n"), "{svg}");
        assert!(svg.contains(
            "<title>1970-01-01 01:00 → 02:00 UTC\nf1: 0.8 (95% CI 0.75 – 0.85)\nbaseline: 0.92\nrule floor: &lt; 0.75</title>"
        ), "{svg}");
        assert!(svg.contains("03:00 → 04:00 UTC (partial: still filling)"));
        // Legends sit above the plot, in their own rows: every name is a text of the SVG.
        for name in [
            "f1",
            "f1 95% CI",
            "baseline",
            "rule floor: &lt; 0.75",
            PARTIAL_LABEL,
        ] {
            assert!(svg.contains(&format!("\n{name}\n</text>")), "{name}: {svg}");
        }
        assert_eq!(
            c.series_names(),
            vec!["f1", "f1 95% CI", "baseline", "rule floor: < 0.75"]
        );
    }

    #[test]
    fn reliability_and_sparkline_have_hover_values() {
        let bins = vec![
            ReliabilityBin {
                low: 0.0,
                high: 0.1,
                count: 40,
                mean_predicted: 0.05,
                fraction_positive: 0.1,
            },
            ReliabilityBin {
                low: 0.9,
                high: 1.0,
                count: 60,
                mean_predicted: 0.95,
                fraction_positive: 0.9,
            },
        ];
        let svg = reliability_svg("calibration", &bins, 400, 300).unwrap();
        assert_eq!(svg.matches("<title>").count(), 2);
        assert!(svg.contains("scores in (0.9, 1]: 60 rows"));
        let spark = sparkline_svg(
            &[(0, Some(0.5)), (H, None), (2 * H, Some(0.7))],
            Some(0.6),
            H,
            160,
            36,
        )
        .unwrap();
        assert_eq!(spark.matches("<title>").count(), 2);
        assert!(spark.contains("1970-01-01 02:00 → 03:00 UTC: 0.7\nbaseline: 0.6"));
    }

    #[test]
    fn svg_has_the_series_and_escapes_text() {
        let svg = time_svg(&chart("<script>alert(1)</script>"), 600, 240).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(!svg.contains("<script>"), "raw markup in the SVG");
        assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(svg.contains("baseline"));
        assert!(svg.contains("<polyline"), "the line");
        assert!(svg.contains("<polygon"), "the band");
        assert_eq!(
            chart("f1").series_names(),
            vec!["f1", "f1 95% CI", "baseline"]
        );
    }

    #[test]
    fn empty_and_single_point_charts_draw() {
        let mut c = chart("x");
        c.lines[0].points = vec![(0, Some(0.5))];
        c.lines[0].band = vec![(0, Some((0.4, 0.6)))];
        assert!(time_svg(&c, 400, 200).is_ok());
        c.lines.clear();
        c.baseline = None;
        assert!(time_svg(&c, 400, 200).is_ok());
        let o = Overlay {
            title: "<b>".into(),
            bins: vec!["<i>".into(), "b".into()],
            reference: vec![0.5, 0.5],
            current: vec![0.9, 0.1],
        };
        let svg = overlay_svg(&o, 400).unwrap();
        assert!(svg.contains("&lt;i&gt;") && !svg.contains("<i>"));
    }

    #[test]
    fn a_distribution_draws_its_bars_in_bin_order_every_time() {
        let o = Overlay {
            title: "c2".into(),
            bins: (0..12).map(|i| format!("bin{i}")).collect(),
            reference: (0..12).map(|i| f64::from(i + 1) / 78.0).collect(),
            current: (0..12).map(|i| f64::from(12 - i) / 78.0).collect(),
        };
        let first = overlay_svg(&o, 600).unwrap();
        for _ in 0..5 {
            assert_eq!(overlay_svg(&o, 600).unwrap(), first);
        }
        // 12 reference bars then 12 current ones, each set from the first bin (at the bottom)
        // up.
        let tops: Vec<f64> = first
            .lines()
            .filter(|l| {
                l.starts_with("<rect")
                    && (l.contains("opacity=\"0.35\"") || l.contains("opacity=\"0.55\""))
            })
            .filter_map(|l| l.split("y=\"").nth(1)?.split('"').next()?.parse().ok())
            .collect();
        assert_eq!(tops.len(), 24, "{first}");
        for bars in tops.chunks(12) {
            assert!(bars.windows(2).all(|w| w[0] > w[1]), "{tops:?}");
        }
    }

    #[test]
    fn png_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.png");
        time_png(&chart("f1"), 600, 240, &p).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
    }
}
