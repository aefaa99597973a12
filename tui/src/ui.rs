//! Rendering: pure functions from the [`App`] to a ratatui buffer (tested with
//! `TestBackend` snapshots).
//!
//! Player layout, top to bottom: a title line (user@host, start, size), the recorded screen
//! at its recorded size (clipped, never scaled, with a "clipped" flag and panning) beside the
//! side panel, a one-line timeline, and the status line with the verification badge.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Row, Table};
use ratatui::Frame;

use sealcast_term::{Place, MAX_SIDE};

use crate::app::{App, Player, Prompt};
use crate::library::Library;
use crate::model::{fmt_time, Outcome, PanelKind, PanelRow, Verification};
use crate::recording::Recording;
use crate::shared::source;

/// Width of the side panel when the terminal is wide enough (≥ 100 columns) or it has focus.
pub const PANEL_WIDTH: u16 = 40;
/// Widest the side panel grows for commands and statements, when the recorded screen leaves
/// room.
pub const PANEL_WIDTH_COMMANDS: u16 = 72;

/// Draw the whole app.
pub fn render(app: &App, f: &mut Frame<'_>) {
    let area = f.area();
    if let Some(p) = &app.player {
        render_player(p, f, area);
    } else if let Some(l) = &app.library {
        render_library(l, f, area);
    }
    if app.help {
        render_help(f, area, app.player.is_some());
    }
}

fn color(c: sealcast_term::vt100::Color) -> Color {
    match c {
        sealcast_term::vt100::Color::Default => Color::Reset,
        sealcast_term::vt100::Color::Idx(i) => Color::Indexed(i),
        sealcast_term::vt100::Color::Rgb(r, g, b) => Color::Rgb(r, g, b),
    }
}

/// `2026-12-06 10:37:00` (UTC) for Unix µs ([`sealcast_format::time::civil`]).
pub fn utc(us: u64) -> String {
    let c = sealcast_format::time::civil(us);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// Human size: `812 B`, `4.2 KiB`, `13.0 MiB`.
pub fn size(b: u64) -> String {
    match b {
        0..=1023 => format!("{b} B"),
        1024..=1_048_575 => format!("{:.1} KiB", b as f64 / 1024.0),
        _ => format!("{:.1} MiB", b as f64 / 1_048_576.0),
    }
}

/// The verification badge for the status line, and its style.
pub fn badge(rec: &Recording, live: Option<crate::app::Live>) -> (String, Style) {
    let Some(s) = rec.summary() else {
        return ("verifying…".into(), Style::new().fg(Color::Yellow));
    };
    let to = rec.verified_until_us();
    let signed = match (&s.signer, &s.key_id) {
        (Some(p), Some(k)) => format!("signed by {p} ({})", &k[..k.len().min(16)]),
        (None, Some(k)) => format!("key {}", &k[..k.len().min(16)]),
        _ => String::new(),
    };
    let upto = to.map_or("start".to_string(), fmt_time);
    match s.outcome {
        Outcome::Sealed => (
            format!("✔ {signed}, verified to {upto}"),
            Style::new().fg(Color::Green),
        ),
        Outcome::Unsealed => match live {
            Some(l) if l.writing => (
                format!(
                    "● LIVE lag {:.1}s · {signed}, verified to {upto}",
                    l.lag_us as f64 / 1e6
                ),
                Style::new().fg(Color::Cyan),
            ),
            _ => (
                format!("⚠ {signed}, unsealed tail after {upto} ({})", s.status),
                Style::new().fg(Color::Yellow),
            ),
        },
        Outcome::Broken => (
            format!("✘ CHAIN BROKEN at {upto}: {} — {}", s.status, s.reason),
            Style::new()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
        ),
        Outcome::Unsigned => (
            format!("✘ NOT SIGNED ({}): {}", s.status, s.reason),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
        _ => (
            format!("? NOT VERIFIED: {}", s.reason),
            Style::new().fg(Color::Yellow),
        ),
    }
}

fn render_player(p: &Player, f: &mut Frame<'_>, area: Rect) {
    let rec = source(&p.shared);
    let [title, main, timeline, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);

    // Title.
    let m = p.meta();
    let who = match (&m.user, &m.host) {
        (Some(u), Some(h)) => format!("{u}@{h}"),
        _ => "(no sealcast metadata)".into(),
    };
    let mut t = vec![
        Span::styled(" sealcast ", Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(who),
    ];
    if let Some(s) = m.start_us {
        t.push(Span::raw(format!("  {} UTC", utc(s))));
    }
    if let Some(c) = &m.command {
        t.push(Span::styled(
            format!("  $ {c}"),
            Style::new().fg(Color::DarkGray),
        ));
    }
    t.push(Span::styled(
        format!("  {}", size(rec.file_bytes())),
        Style::new().fg(Color::DarkGray),
    ));
    f.render_widget(Paragraph::new(Line::from(t)), title);

    // Screen and panel.
    let show_panel = p.panel_focus || area.width >= 100;
    // Commands and statements get the width the recorded screen does not use (up to
    // PANEL_WIDTH_COMMANDS), for cwd, sources, connections and errors.
    let panel_width = if rec.panel().iter().any(|r| r.kind.is_command()) {
        let (cols, _) = p.emu.size();
        area.width
            .saturating_sub(cols.saturating_add(2))
            .clamp(PANEL_WIDTH, PANEL_WIDTH_COMMANDS)
    } else {
        PANEL_WIDTH
    };
    let (screen_area, panel_area) = if show_panel {
        let [a, b] =
            Layout::horizontal([Constraint::Min(10), Constraint::Length(panel_width)]).areas(main);
        (a, Some(b))
    } else {
        (main, None)
    };
    let state = if p.pos == 0 {
        rec.state_of(0)
    } else {
        rec.state_of(p.pos - 1)
    };
    render_screen(p, f, screen_area, state);
    if let Some(a) = panel_area {
        render_panel(p, &rec, f, a);
    }
    render_timeline(p, &rec, f, timeline);
    render_status(p, &rec, f, status);
}

fn render_screen(p: &Player, f: &mut Frame<'_>, area: Rect, state: Verification) {
    let (cols, rows) = p.emu.size();
    let (border, label) = match state {
        Verification::Failed => (
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            Some(" ✘ after a failed checkpoint: not verified "),
        ),
        Verification::Unsealed => (Style::new().fg(Color::Yellow), Some(" unsealed ")),
        Verification::Pending => (Style::new().fg(Color::DarkGray), None),
        Verification::Verified { .. } => (Style::new().fg(Color::DarkGray), None),
    };
    let inner_w = area.width.saturating_sub(2);
    let inner_h = area.height.saturating_sub(2);
    let clipped = cols > inner_w || rows > inner_h;
    let max_pan = (cols.saturating_sub(inner_w), rows.saturating_sub(inner_h));
    let pan = (p.pan.0.min(max_pan.0), p.pan.1.min(max_pan.1));
    let mut title = vec![Span::raw(format!(" {cols}×{rows} "))];
    if clipped {
        title.push(Span::styled(
            format!(" clipped (pan H J K L) +{},{} ", pan.0, pan.1),
            Style::new().fg(Color::Black).bg(Color::Yellow),
        ));
    }
    if p.scroll > 0 {
        title.push(Span::styled(
            format!(" scrollback −{} ", p.scroll),
            Style::new().fg(Color::Black).bg(Color::Cyan),
        ));
    }
    if let Some(l) = label {
        title.push(Span::styled(l, border));
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(border)
        .title(Line::from(title));
    let inner = block.inner(area);
    f.render_widget(block, area);

    let screen = p.emu.screen();
    let buf = f.buffer_mut();
    // Rows from the transcript shown above the screen when scrolled back.
    let above: Vec<String> = if p.scroll > 0 {
        let index = p.shared.index();
        let t = index.transcript();
        let end = t.rows_before(p.pos);
        let start = end.saturating_sub(p.scroll);
        t.rows(start..end).into_iter().map(|r| r.text).collect()
    } else {
        Vec::new()
    };
    let hit = p.hit.as_ref().filter(|h| h.event == p.pos);
    for y in 0..inner.height {
        let sy = u32::from(y) + u32::from(pan.1);
        let Ok(sy) = u16::try_from(sy) else { break };
        let (from_transcript, row) = if (sy as usize) < above.len() {
            (Some(&above[sy as usize]), 0)
        } else {
            (None, sy - above.len() as u16)
        };
        if from_transcript.is_none() && row >= rows {
            break;
        }
        if let Some(text) = from_transcript {
            let line: String = text
                .chars()
                .skip(pan.0 as usize)
                .take(inner.width as usize)
                .collect();
            buf.set_string(inner.x, inner.y + y, line, Style::new().fg(Color::Gray));
            continue;
        }
        for x in 0..inner.width {
            let col = u32::from(x) + u32::from(pan.0);
            let Ok(col) = u16::try_from(col) else { break };
            if col >= cols.min(MAX_SIDE) {
                break;
            }
            let Some(cell) = screen.cell(row, col) else {
                continue;
            };
            if cell.is_wide_continuation() {
                continue;
            }
            let mut style = Style::new()
                .fg(color(cell.fgcolor()))
                .bg(color(cell.bgcolor()));
            if cell.bold() {
                style = style.add_modifier(Modifier::BOLD);
            }
            if cell.dim() {
                style = style.add_modifier(Modifier::DIM);
            }
            if cell.italic() {
                style = style.add_modifier(Modifier::ITALIC);
            }
            if cell.underline() {
                style = style.add_modifier(Modifier::UNDERLINED);
            }
            if cell.inverse() {
                style = style.add_modifier(Modifier::REVERSED);
            }
            if let Some(Place::Screen {
                row: hr,
                col: hc,
                width,
            }) = hit.map(|h| &h.place)
            {
                if *hr == row && col >= *hc && col < hc + width && p.scroll == 0 {
                    style = Style::new().fg(Color::Black).bg(Color::Yellow);
                }
            }
            let (cy, cx) = screen.cursor_position();
            if !screen.hide_cursor() && cy == row && cx == col && p.scroll == 0 {
                style = style.add_modifier(Modifier::REVERSED);
            }
            let sym = cell.contents();
            let sym = if sym.is_empty() { " " } else { sym };
            if let Some(c) = buf.cell_mut((inner.x + x, inner.y + y)) {
                c.set_symbol(sym).set_style(style);
            }
        }
    }
}

fn kind_label(r: &PanelRow) -> &'static str {
    match r.kind {
        PanelKind::Command { .. } => "$",
        PanelKind::Query { .. } => "sql",
        PanelKind::Disagreement => "⚠",
        PanelKind::Marker => "mark",
        PanelKind::Resize => "size",
        PanelKind::Idle => "idle",
        PanelKind::Exit => "exit",
    }
}

/// The verification mark of a row: what a row from an unverified or failed region shows
/// instead of passing for verified.
fn verification_mark(v: Verification) -> (&'static str, Style) {
    match v {
        Verification::Verified { .. } => ("✔", Style::new().fg(Color::Green)),
        Verification::Pending => ("…", Style::new().fg(Color::DarkGray)),
        Verification::Unsealed => ("?", Style::new().fg(Color::Yellow)),
        Verification::Failed => ("✘", Style::new().fg(Color::Red)),
    }
}

/// The two lines of a command or statement row: what ran (status coloured), then where and
/// how (cwd and sources; connection, rows, error).
fn command_lines(r: &PanelRow) -> (Vec<Span<'static>>, String) {
    let dim = Style::new().fg(Color::DarkGray);
    let dur = if r.dur_us > 0 {
        fmt_dur(r.dur_us)
    } else {
        String::new()
    };
    let mut first = vec![Span::raw(format!("{:>7} {dur:>5} ", fmt_time(r.t_us)))];
    let second = match &r.kind {
        PanelKind::Command {
            cwd,
            pipestatus,
            sources,
            ..
        } => {
            let (status, style) = match r.status {
                Some(0) => ("  0".to_string(), Style::new().fg(Color::Green)),
                Some(s) => (
                    format!("{s:>3}"),
                    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
                ),
                None => ("  –".to_string(), dim),
            };
            first.push(Span::styled(status, style));
            first.push(Span::raw(format!(" $ {}", r.text)));
            let mut second = cwd.clone().unwrap_or_default();
            if pipestatus.len() > 1 {
                let p: Vec<String> = pipestatus.iter().map(i32::to_string).collect();
                second.push_str(&format!(" pipe {}", p.join("|")));
            }
            if !second.is_empty() {
                second.push_str(" · ");
            }
            second.push_str(sources);
            second
        }
        PanelKind::Query {
            connection,
            rows,
            error,
        } => {
            let (status, style) = match (error, rows) {
                (Some(_), _) if r.failed() => (
                    "ERR".to_string(),
                    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
                ),
                (Some(e), _) => (e.chars().take(3).collect(), dim),
                (None, Some(n)) => (format!("{n:>3}"), Style::new().fg(Color::Green)),
                (None, None) => ("  –".to_string(), dim),
            };
            first.push(Span::styled(status, style));
            first.push(Span::raw(format!(" ⛁ {}", r.text)));
            let mut second = connection.clone().unwrap_or_default();
            if let Some(n) = rows {
                second.push_str(&format!(" · {n} row{}", if *n == 1 { "" } else { "s" }));
            }
            if let Some(e) = error {
                second.push_str(&format!(" · {e}"));
            }
            second
        }
        PanelKind::Exit => {
            first.push(Span::raw(format!("    {}", r.text)));
            String::new()
        }
        _ => {
            first.push(Span::raw(format!("{:<4} {}", kind_label(r), r.text)));
            String::new()
        }
    };
    (first, second)
}

/// `1.2s`, `3m04s`, `2h05m` for a duration in µs.
fn fmt_dur(us: u64) -> String {
    let s = us / 1_000_000;
    if s < 60 {
        format!("{:.1}s", us as f64 / 1e6)
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s / 60) % 60)
    }
}

fn render_panel(p: &Player, rec: &Recording, f: &mut Frame<'_>, area: Rect) {
    let rows = rec.panel();
    let has_cmds = rows.iter().any(|r| r.kind.is_command());
    let title = if has_cmds {
        let dbs = rows
            .iter()
            .any(|r| matches!(r.kind, PanelKind::Query { .. }));
        let sh = rows
            .iter()
            .any(|r| matches!(r.kind, PanelKind::Command { .. }));
        match (sh, dbs) {
            (true, true) => " commands · statements ",
            (false, true) => " statements ",
            _ => " commands ",
        }
    } else {
        " markers · resizes · idle "
    };
    let border = if p.panel_focus {
        Style::new().fg(Color::Cyan)
    } else {
        Style::new().fg(Color::DarkGray)
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(border)
        .title(title);
    let inner = block.inner(area);
    f.render_widget(block, area);
    if rows.is_empty() {
        f.render_widget(
            Paragraph::new("(no commands, markers,\n resizes or idle periods)")
                .style(Style::new().fg(Color::DarkGray)),
            inner,
        );
        return;
    }
    let playing = rows.iter().rposition(|r| r.t_us <= p.t_us);
    // Command and statement rows take two lines (what, then where and how).
    let per = if has_cmds { 2 } else { 1 };
    let h = (inner.height as usize / per).max(1);
    let focus_row = if p.panel_focus {
        Some(p.panel_sel)
    } else {
        playing
    };
    let first = focus_row
        .map_or(0, |r| r.saturating_sub(h / 2))
        .min(rows.len().saturating_sub(h));
    let width = inner.width as usize;
    let buf = f.buffer_mut();
    for (i, r) in rows.iter().enumerate().skip(first).take(h) {
        let y = inner.y + ((i - first) * per) as u16;
        let mut style = Style::new();
        if r.failed() {
            style = style.fg(Color::Red);
        } else if r.kind == PanelKind::Idle {
            style = style.fg(Color::DarkGray);
        } else if r.kind == PanelKind::Disagreement {
            style = style.fg(Color::Yellow);
        }
        if r.verification == Verification::Failed {
            style = style.fg(Color::Red).add_modifier(Modifier::CROSSED_OUT);
        }
        if Some(i) == playing {
            style = style.add_modifier(Modifier::BOLD).bg(Color::Indexed(236));
        }
        if p.panel_focus && i == p.panel_sel {
            style = style.add_modifier(Modifier::REVERSED);
        }
        let (mark, mark_style) = verification_mark(r.verification);
        let (mut spans, second) = if has_cmds {
            command_lines(r)
        } else {
            let dur = if r.dur_us > 0 {
                format!(" {}", fmt_time(r.dur_us))
            } else {
                String::new()
            };
            let status = match r.status {
                Some(s) if r.kind != PanelKind::Exit => format!(" [{s}]"),
                _ => String::new(),
            };
            let line = format!(
                "{:>7} {:<4} {}{dur}{status}",
                fmt_time(r.t_us),
                kind_label(r),
                r.text
            );
            (vec![Span::raw(line)], String::new())
        };
        spans.insert(0, Span::styled(mark, mark_style));
        buf.set_stringn(inner.x, y, " ".repeat(width), width, style);
        let mut x = inner.x;
        for sp in spans {
            let left = (inner.x as usize + width).saturating_sub(x as usize);
            if left == 0 {
                break;
            }
            let (nx, _) = buf.set_stringn(x, y, &sp.content, left, style.patch(sp.style));
            x = nx;
        }
        if per == 2 && y + 1 < inner.y + inner.height {
            let line = format!("         {second}");
            buf.set_stringn(
                inner.x,
                y + 1,
                format!("{line:<width$}"),
                width,
                style.fg(Color::DarkGray).remove_modifier(Modifier::BOLD),
            );
        }
    }
}

fn render_timeline(p: &Player, rec: &Recording, f: &mut Frame<'_>, area: Rect) {
    let w = area.width as usize;
    if w == 0 {
        return;
    }
    let dur = rec.duration_us().max(1);
    let at = |t: u64| ((t as u128 * (w as u128 - 1)) / dur as u128) as usize;
    let verified_to = rec.verified_until_us();
    let after = rec.summary().map(|s| s.after_verified());
    let mut cells: Vec<(char, Style)> = (0..w)
        .map(|i| {
            let t = (i as u128 * dur as u128 / w.max(1) as u128) as u64;
            let style = match (verified_to, after) {
                (Some(v), _) if t <= v => Style::new().fg(Color::Green),
                (_, Some(Verification::Failed)) => Style::new().fg(Color::Red),
                (_, Some(_)) => Style::new().fg(Color::Yellow),
                _ => Style::new().fg(Color::DarkGray),
            };
            ('─', style)
        })
        .collect();
    for r in rec.timeline_rows() {
        let i = at(r.t_us);
        match r.kind {
            PanelKind::Idle => {
                for c in cells.iter_mut().take(at(r.t_us + r.dur_us) + 1).skip(i) {
                    *c = ('┄', Style::new().fg(Color::DarkGray));
                }
            }
            _ => {
                let style = if r.failed() {
                    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
                } else {
                    Style::new().fg(Color::White)
                };
                cells[i.min(w - 1)] = ('│', style);
            }
        }
    }
    for &t in &p.hits {
        cells[at(t).min(w - 1)] = ('▲', Style::new().fg(Color::Yellow));
    }
    cells[at(p.t_us).min(w - 1)] = (
        '●',
        Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
    );
    let spans: Vec<Span<'_>> = cells
        .into_iter()
        .map(|(c, s)| Span::styled(c.to_string(), s))
        .collect();
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn render_status(p: &Player, rec: &Recording, f: &mut Frame<'_>, area: Rect) {
    if let Some(prompt) = &p.prompt {
        let text = match prompt {
            Prompt::Search(sealcast_term::Direction::Forward, t) => format!("/{t}▏"),
            Prompt::Search(_, t) => format!("?{t}▏"),
            Prompt::Goto(t) => format!("go to time (1h2m3s, 83.5, 1:02): {t}▏"),
        };
        f.render_widget(Paragraph::new(text), area);
        return;
    }
    let state = if p.playing { "▶" } else { "⏸" };
    let mut spans = vec![
        Span::styled(
            format!("{state} "),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!(
            "{} / {}",
            fmt_time(p.t_us),
            fmt_time(rec.duration_us())
        )),
        Span::raw(format!("  {}×", p.speed())),
    ];
    if p.idle {
        spans.push(Span::raw("  idle≤2s"));
    }
    if let Some(f) = rec.scan_progress() {
        spans.push(Span::styled(
            format!("  loading {:.0}%", f * 100.0),
            Style::new().fg(Color::DarkGray),
        ));
    }
    let (b, style) = badge(rec, p.live);
    spans.push(Span::raw("  "));
    spans.push(Span::styled(b, style));
    if let Some(m) = &p.message {
        spans.push(Span::styled(format!("  {m}"), Style::new().fg(Color::Cyan)));
    }
    spans.push(Span::styled("  h: help", Style::new().fg(Color::DarkGray)));
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn render_library(l: &Library, f: &mut Frame<'_>, area: Rect) {
    let [title, table, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let visible = l.visible();
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(
                " sealcast library ",
                Style::new().add_modifier(Modifier::BOLD),
            ),
            Span::raw(format!(
                "{}  ({} of {} recordings)",
                l.dir.display(),
                visible.len(),
                l.rows.len()
            )),
        ])),
        title,
    );
    let header = Row::new([
        "start (UTC)",
        "user",
        "host",
        "duration",
        "size",
        "cmds",
        "verification",
    ])
    .style(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED));
    let rows: Vec<Row<'_>> = visible
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (status, st) = match (&r.error, &r.status, r.live) {
                (Some(e), _, _) => (format!("unplayable: {e}"), Style::new().fg(Color::Red)),
                (_, _, true) => ("LIVE".to_string(), Style::new().fg(Color::Cyan)),
                (_, Some((s, o)), _) => (
                    s.clone(),
                    match o {
                        Outcome::Sealed => Style::new().fg(Color::Green),
                        Outcome::Unsealed | Outcome::Unverifiable => Style::new().fg(Color::Yellow),
                        _ => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
                    },
                ),
                _ => ("…".to_string(), Style::new().fg(Color::DarkGray)),
            };
            let mut row = Row::new(vec![
                ratatui::text::Text::raw(r.start_us.map(utc).unwrap_or_default()),
                ratatui::text::Text::raw(r.user.clone().unwrap_or_default()),
                ratatui::text::Text::raw(r.host.clone().unwrap_or_default()),
                ratatui::text::Text::raw(r.duration_us.map(fmt_time).unwrap_or_else(|| "…".into())),
                ratatui::text::Text::raw(size(r.size)),
                ratatui::text::Text::raw(
                    r.commands
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "–".into()),
                ),
                ratatui::text::Text::styled(status, st),
            ]);
            if i == l.sel {
                row = row.style(Style::new().add_modifier(Modifier::REVERSED));
            }
            row
        })
        .collect();
    let t = Table::new(
        rows,
        [
            Constraint::Length(19),
            Constraint::Length(10),
            Constraint::Length(14),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(5),
            Constraint::Min(10),
        ],
    )
    .header(header)
    .column_spacing(1);
    f.render_widget(t, table);
    let msg = match &l.message {
        Some(m) => m.clone(),
        None => format!(
            "filter: {}▏  ↑↓ select  Enter play  Esc {}",
            l.filter,
            if l.filter.is_empty() {
                "quit"
            } else {
                "clear filter"
            }
        ),
    };
    f.render_widget(Paragraph::new(msg), status);
}

/// The key list shown by `h` (also the README's table).
pub const HELP: &[(&str, &str)] = &[
    ("space", "pause / play"),
    ("← →", "back / forward 5 s"),
    ("Shift+← →", "back / forward 60 s"),
    (", .", "one event back / forward (3. = three)"),
    ("0 … 9", "jump to 0 % … 90 %"),
    ("g G", "start / end (G: live edge with -f)"),
    (":", "go to a time: 1h2m3s, 83.5, 1:02"),
    ("< > =", "half / double speed (0.25–16×), 1×"),
    ("i", "idle compression (gaps ≤ 2 s)"),
    ("[ ]", "previous / next command (or marker)"),
    ("{ }", "previous / next failed command"),
    ("/ ?", "search forward / backward (regex)"),
    ("n N", "next / previous match"),
    ("PgUp PgDn", "scroll back through scrolled-off rows"),
    ("H J K L", "pan a clipped screen (or Ctrl/Alt+arrows)"),
    ("Tab", "focus the side panel (↑↓, Enter seeks)"),
    ("Esc", "cancel search / clear highlight"),
    ("h", "this help (any key closes)"),
    ("q", "quit (back to the library)"),
];

fn render_help(f: &mut Frame<'_>, area: Rect, player: bool) {
    let lines: Vec<Line<'_>> = if player {
        HELP.iter()
            .map(|(k, v)| {
                Line::from(vec![
                    Span::styled(format!("{k:>10}  "), Style::new().fg(Color::Cyan)),
                    Span::raw(*v),
                ])
            })
            .collect()
    } else {
        vec![
            Line::raw("type      filter (words: name, user, host, status)"),
            Line::raw("↑ ↓       select"),
            Line::raw("Enter     play the recording"),
            Line::raw("Esc       clear the filter, then quit"),
        ]
    };
    let h = (lines.len() as u16 + 2).min(area.height);
    let w = 58.min(area.width);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" keys ")),
        r,
    );
}
