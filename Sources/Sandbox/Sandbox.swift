import Foundation
import SandboxKit

/// `huskimo-sandbox [--port N]`: serves the sandbox Twilio on 127.0.0.1 until killed; prints the port.
@main
struct Sandbox {
    static func main() throws {
        var port = 0
        var arguments = CommandLine.arguments.dropFirst()
        while let argument = arguments.popFirst() {
            if argument == "--port", let value = arguments.popFirst(), let number = Int(value) { port = number }
        }
        let api = SandboxAPI()
        let server = HTTPServer { api.handle($0) }
        let bound = try server.start(port: port)
        FileHandle.standardOutput.write(Data("huskimo-sandbox listening on http://127.0.0.1:\(bound)\n".utf8))
        while true { sleep(3600) }
    }
}
