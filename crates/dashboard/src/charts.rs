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

/// One line of a time chart: a value per window (`None`: no value, the line breaks), and an
/// optional confidence band drawn under it.
#[derive(Debug, Clone)]
pub struct Line {
    pub name: String,
    pub color: RGBColor,
    pub points: Vec<(i64, Option<f64>)>,
    pub band: Vec<(i64, Option<(f64, f64)>)>,
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
}

impl TimeChart {
    /// The legend names of what the chart draws, in order: lines (with `95% CI` after a line
    /// that has a band), bars, `baseline`.
    pub fn series_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        for l in &self.lines {
            out.push(l.name.clone());
            if l.band.iter().any(|(_, b)| b.is_some()) {
                out.push(format!("{} 95% CI", l.name));
            }
        }
        if let Some(b) = &self.bars {
            out.push(b.name.clone());
        }
        if self.baseline.is_some() {
            out.push(self.baseline_label.clone());
        }
        out
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

type DrawResult = Result<(), String>;

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

fn draw_time<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, c: &TimeChart) -> DrawResult {
    root.fill(&WHITE).map_err(err)?;
    let (y0, y1) = c.y_range();
    let half = c.window_micros / 2;
    let to = c.to.max(c.from + 1);
    let (ticks, step) = time_ticks(c.from, to);
    let mut chart = ChartBuilder::on(root)
        .margin(8)
        .margin_right(16)
        .caption(&c.title, (FONT, 15).into_font().style(FontStyle::Bold))
        .x_label_area_size(24)
        .y_label_area_size(48)
        .build_cartesian_2d((c.from..to).with_key_points(ticks), y0..y1)
        .map_err(err)?;
    let w = c.window_micros;
    chart
        .configure_mesh()
        .y_labels(5)
        .x_label_formatter(&|x| short_time(*x, step))
        .y_label_formatter(&|y| crate::data::short(*y))
        .label_style((FONT, 11).into_font().color(&AXIS))
        .axis_style(AXIS)
        .bold_line_style(GRID)
        .light_line_style(WHITE)
        .draw()
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
            .map_err(err)?
            .label(b.name.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 4), (x + 12, y + 4)], b.color.filled()));
    }
    for l in &c.lines {
        let color = l.color;
        let mut labelled_band = false;
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
            let s = chart
                .draw_series(std::iter::once(Polygon::new(
                    poly,
                    color.mix(0.15).filled(),
                )))
                .map_err(err)?;
            if !labelled_band {
                labelled_band = true;
                s.label(format!("{} 95% CI", l.name)).legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.mix(0.15).filled())
                });
            }
        }
        let mut labelled = false;
        for run in runs(&l.points) {
            let pts: Vec<(i64, f64)> = run.iter().map(|&(x, v)| (x + half, v)).collect();
            let s = if pts.len() == 1 {
                chart
                    .draw_series(std::iter::once(Circle::new(pts[0], 3, color.filled())))
                    .map_err(err)?
            } else {
                chart
                    .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                    .map_err(err)?
            };
            if !labelled {
                labelled = true;
                s.label(l.name.clone()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 12, y)], color.stroke_width(2))
                });
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
            .map_err(err)?
            .label(c.baseline_label.clone())
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 12, y)], BASELINE.stroke_width(1)));
    }
    legend(&mut chart, SeriesLabelPosition::LowerLeft)?;
    root.present().map_err(err)
}

fn draw_overlay<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, o: &Overlay) -> DrawResult {
    root.fill(&WHITE).map_err(err)?;
    let n = o.bins.len().max(1) as i32;
    let hi = o
        .reference
        .iter()
        .chain(&o.current)
        .fold(0.0f64, |a, &b| a.max(b))
        .max(0.01)
        * 1.4; // room on the right for the legend
    let longest = o.bins.iter().map(|b| b.chars().count()).max().unwrap_or(4) as u32;
    let mut chart = ChartBuilder::on(root)
        .margin(8)
        .margin_right(16)
        .caption(&o.title, (FONT, 14).into_font().style(FontStyle::Bold))
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
    // The reference wide and pale, the current window narrower on top of it.
    for (name, values, color, margin) in [
        ("reference", &o.reference, PALETTE[7].mix(0.35), 2),
        ("current", &o.current, PALETTE[0].mix(0.55), 6),
    ] {
        chart
            .draw_series(
                Histogram::horizontal(&chart)
                    .style(color.filled())
                    .margin(margin)
                    .data(values.iter().enumerate().map(|(i, &v)| (i as i32, v))),
            )
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    root.present().map_err(err)
}

/// The legend box of a chart, at `position`.
fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> DrawResult {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT, 11))
        .background_style(WHITE.mix(0.85))
        .border_style(GRID)
        .draw()
        .map_err(err)
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

/// A small line without axes (the overview's trend of a model's headline metric), with the
/// baseline dashed.
pub fn sparkline_svg(
    points: &[(i64, Option<f64>)],
    baseline: Option<f64>,
    w: u32,
    h: u32,
) -> Result<String, String> {
    register_font();
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (w, h)).into_drawing_area();
        let c = TimeChart {
            title: String::new(),
            from: points.first().map(|p| p.0).unwrap_or(0),
            to: points.last().map(|p| p.0 + 1).unwrap_or(1),
            window_micros: 1,
            y: YScale::Unit,
            lines: vec![Line {
                name: String::new(),
                color: PALETTE[0],
                points: points.to_vec(),
                band: Vec::new(),
            }],
            bars: None,
            baseline,
            baseline_label: String::new(),
        };
        let (y0, y1) = c.y_range();
        let mut chart = ChartBuilder::on(&root)
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
        for run in runs(points) {
            chart
                .draw_series(LineSeries::new(run, PALETTE[0].stroke_width(2)))
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(buf)
}

/// A chart as an SVG document (a string to inline into HTML).
pub fn time_svg(c: &TimeChart, w: u32, h: u32) -> Result<String, String> {
    register_font();
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (w, h)).into_drawing_area();
        draw_time(&root, c)?;
    }
    Ok(buf)
}

/// The height an overlay of `bins` bins needs.
pub fn overlay_height(bins: usize) -> u32 {
    (bins as u32 * 18 + 70).clamp(140, 420)
}

/// A distribution overlay as an SVG document.
pub fn overlay_svg(o: &Overlay, w: u32) -> Result<String, String> {
    register_font();
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (w, overlay_height(o.bins.len())))
            .into_drawing_area();
        draw_overlay(&root, o)?;
    }
    Ok(buf)
}

/// A chart as a PNG file.
pub fn time_png(c: &TimeChart, w: u32, h: u32, path: &std::path::Path) -> Result<(), String> {
    register_font();
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    draw_time(&root, c)
}

/// A distribution overlay as a PNG file.
pub fn overlay_png(o: &Overlay, w: u32, path: &std::path::Path) -> Result<(), String> {
    register_font();
    let root = BitMapBackend::new(path, (w, overlay_height(o.bins.len()))).into_drawing_area();
    draw_overlay(&root, o)
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
            }],
            bars: None,
            baseline: Some(0.92),
            baseline_label: "baseline".into(),
        }
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
    fn png_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.png");
        time_png(&chart("f1"), 600, 240, &p).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
    }
}
