package import ArgumentParser

extension AsyncParsableCommand {
    /// `main()` with the command-line contract's exit codes: bad usage (an unknown flag, a value that does not parse, a
    /// missing option) exits 2 with ArgumentParser's message and usage, where ArgumentParser's own code is 64;
    /// everything else as ArgumentParser does it (`--help` 0, a thrown `ExitCode` its code).
    package static func mainWithContractExitCodes() async {
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand { try await command.run() } else { try command.run() }
        } catch {
            guard exitCode(for: error) == .validationFailure else { exit(withError: error) }
            CommandSupport.complain(fullMessage(for: error))
            exit(withError: ExitCode(2))
        }
    }
}
