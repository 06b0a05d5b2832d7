//! One short file per verb: each turns its parsed arguments into an engine
//! request, calls the engine, and prints the answer through [`crate::output`].
//! Each returns the process's exit status; an `Err` is a failure of ctr
//! itself (status 125).

mod attach;
mod completion;
mod confirm;
mod container;
mod create;
mod exec;
mod generate;
mod image;
mod info;
mod inspect;
mod kill;
mod logs;
mod moving;
mod network;
mod pause;
mod port;
mod ps;
mod rename;
mod restart;
mod rm;
mod run;
mod start;
mod stats;
mod stop;
mod update;
mod version;
mod volume;
mod wait;

pub(crate) use confirm::{confirm, each};

use crate::args::Command;
use anyhow::Result;
use ctr_cli::paths::Paths;

pub fn dispatch(command: Command) -> Result<i32> {
    // These need no paths (xtask install runs them as root).
    let command = match command {
        Command::Version(args) => return version::version(args),
        Command::Completion(args) => return completion::completion(args),
        Command::Generate(crate::args::durable::GenerateCommand::Man(args)) => return completion::man(args),
        other => other,
    };
    let paths = Paths::discover()?;
    match command {
        Command::Run(args) => run::run(&paths, *args),
        Command::Create(args) => create::create(&paths, *args),
        Command::Start(args) => start::start(&paths, args),
        Command::Restart(args) => restart::restart(&paths, args),
        Command::Rename(args) => rename::rename(&paths, args),
        Command::Attach(args) => attach::attach(&paths, args),
        Command::Update(args) => update::update(&paths, args),
        Command::Generate(command) => generate::generate(&paths, command),
        Command::Image(command) => image::image(&paths, command),
        Command::Volume(command) => volume::volume(&paths, command),
        Command::Images(command) => image::top_level(&paths, command),
        Command::Moving(command) => moving::top_level(&paths, command),
        Command::Exec(args) => exec::exec(&paths, args),
        Command::Ps(args) => ps::ps(&paths, args),
        Command::Logs(args) => logs::logs(&paths, args),
        Command::Stop(args) => stop::stop(&paths, args),
        Command::Kill(args) => kill::kill(&paths, args),
        Command::Wait(args) => wait::wait(&paths, args),
        Command::Container(command) => container::container(&paths, command),
        Command::Stats(args) => stats::stats(&paths, args),
        Command::Pause(args) => pause::pause(&paths, args, true),
        Command::Unpause(args) => pause::pause(&paths, args, false),
        Command::Rm(args) => rm::rm(&paths, args),
        Command::Inspect(args) => inspect::inspect(&paths, args),
        Command::Port { container } => port::port(&paths, &container),
        Command::Network(command) => network::network(&paths, command),
        Command::Info(args) => info::info(&paths, args),
        Command::Version(_) | Command::Completion(_) => unreachable!("handled above"),
    }
}
