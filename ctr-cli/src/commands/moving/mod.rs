//! The verbs that move files and images (`cp`, `commit`, `export`,
//! `diff`, `push`, `login`, `logout`, `top`, `history`,
//! `system`), one file each.

mod commit;
mod cp;
mod diff;
mod export;
mod history;
mod login;
mod push;
mod system;
mod top;

use crate::args::moving::TopLevel;
use anyhow::Result;
use ctr_cli::paths::Paths;

pub fn top_level(paths: &Paths, command: TopLevel) -> Result<i32> {
    match command {
        TopLevel::Cp(args) => cp::cp(paths, &args),
        TopLevel::Commit(args) => commit::commit(paths, args),
        TopLevel::Export(args) => export::export(paths, &args),
        TopLevel::Diff { container } => diff::diff(paths, &container),
        TopLevel::Push(args) => push::push(paths, &args),
        TopLevel::Login(args) => login::login(&args),
        TopLevel::Logout { server } => login::logout(server.as_deref()),
        TopLevel::Top { container } => top::top(paths, &container),
        TopLevel::History(args) => history::history(paths, &args),
        TopLevel::System(command) => system::system(paths, command),
    }
}
