import ArgumentParser

@main
struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "huskimo-worker", abstract: "Runs Huskimo jobs.")
    func run() async throws {}
}
