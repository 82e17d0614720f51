import ArgumentParser

@main
struct LoraTwin: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loratwin",
        abstract: "A discrete-event digital twin of multi-tenant LoRA LLM serving.",
        subcommands: [SimulateCommand.self, TraceCommand.self, ProfileCommand.self, ValidateCommand.self],
        defaultSubcommand: SimulateCommand.self
    )
}
