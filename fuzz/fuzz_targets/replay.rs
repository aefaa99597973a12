//! The player's replay path on arbitrary files: open (frame scan, header), index (screen,
//! keyframes, transcript), seeks and a search. Never panics, always terminates.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sealcast_term::IndexPolicy;
use sealcast_tui::{Player, PlayerOptions, Recording, Shared};

fuzz_target!(|data: &[u8]| {
    let Ok(rec) = Recording::from_bytes(data.to_vec()) else {
        return;
    };
    let policy = IndexPolicy {
        every_bytes: 512,
        every_us: 1_000_000,
        budget_bytes: 1 << 20,
    };
    let shared = Shared::new(rec, policy);
    shared.index_all(policy);
    let mut p = Player::new(shared, PlayerOptions { at_us: Some(0), ..Default::default() });
    let dur = sealcast_tui::shared::source(&p.shared()).duration_us();
    for k in 0..8u64 {
        p.seek_to_for_bench(dur / 8 * k);
    }
    let mut app = sealcast_tui::App::with_player(p);
    for c in "/a\n".chars() {
        let code = if c == '\n' {
            crossterm::event::KeyCode::Enter
        } else {
            crossterm::event::KeyCode::Char(c)
        };
        app.update(sealcast_tui::Action::Key(crossterm::event::KeyEvent::new(
            code,
            crossterm::event::KeyModifiers::NONE,
        )));
    }
    if let Some(p) = app.player.as_mut() {
        p.finish_search();
    }
});
