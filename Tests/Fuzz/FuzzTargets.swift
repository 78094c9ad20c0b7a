import Foundation
import HuskimoConnectors
import HuskimoCore
import HuskimoFleet

/// Everything that parses what arrives from outside, one fuzz target each: the JSON scanner, the Twilio and
/// Singular page converters, the configuration loader, the job and load message decoders, the metrics port's
/// HTTP head parser. The contract: no crash, no hang, no unbounded allocation; bad input is a classified error
/// (a class and a safe description) and whatever is staged is valid UTF-8.
enum FuzzTargets {
    static let names = ["json", "twilio", "singular", "arraystream", "config", "job", "load", "http"]

    static func run(_ target: String, _ bytes: UnsafeRawBufferPointer) {
        do {
            switch target {
            case "json":
                var scanner = JSONScanner(bytes)
                _ = try scanner.readValue()
            case "twilio":
                guard let selector = bytes.first else { return }
                let tables: [TwilioTable] = [.calls, .messages, .recordings, .incomingPhoneNumbers]
                let converter = TwilioPageConverter(
                    table: tables[Int(selector) % tables.count], channelName: "c\tx",
                    whenRetrieved: "2026-01-01 00:00:00", day: selector & 0x80 != 0 ? Day("2026-11-20") : nil)
                var writer = TSVWriter(capacity: 1 << 12)
                _ = try converter.convert(page: UnsafeRawBufferPointer(rebasing: bytes.dropFirst()), into: &writer)
                precondition(writer.withUnsafeBytes { UTF8Check.isValid($0) }, "staged bytes that are not UTF-8")
            case "singular":
                guard let selector = bytes.first, let campaigns = Resource.campaigns.singularTable,
                    let creatives = Resource.creatives.singularTable
                else { return }
                let converter = SingularConverter(
                    table: selector & 1 == 0 ? campaigns : creatives, channelName: "s",
                    whenRetrieved: "2026-01-01 00:00:00.000", day: selector & 2 != 0 ? Day("2026-11-20") : nil)
                var writer = TSVWriter(capacity: 1 << 12)
                _ = try converter.convert(UnsafeRawBufferPointer(rebasing: bytes.dropFirst()), into: &writer)
                precondition(writer.withUnsafeBytes { UTF8Check.isValid($0) }, "staged bytes that are not UTF-8")
            case "arraystream":
                // The streamed Singular day: any chunking; every batch handed on must be a JSON array the scanner reads.
                guard let selector = bytes.first else { return }
                var splitter = JSONArrayStream(batchBytes: Int(selector % 64) + 1, maxObjectBytes: 4096)
                let body = UnsafeRawBufferPointer(rebasing: bytes.dropFirst())
                let size = Int(selector % 17) + 1
                let check = { (batch: [UInt8]) throws in
                    precondition(batch.first == 0x5B && batch.last == 0x5D || batch.first == 0x7B, "a batch that is not an array")
                    try batch.withUnsafeBytes { raw in
                        var scanner = JSONScanner(raw)
                        _ = try scanner.readValue()
                    }
                }
                var offset = 0
                while offset < body.count {
                    try splitter.feed(UnsafeRawBufferPointer(rebasing: body[offset..<min(offset + size, body.count)]), check)
                    offset += size
                }
                try splitter.finish(check)
            case "config":
                _ = try FleetConfig.parse(String(decoding: bytes, as: UTF8.self), environment: ["TOKEN": "t"])
            case "job":
                _ = try MessageCodec.decodeJob(Array(bytes))
            case "load":
                _ = try MessageCodec.decodeLoad(Array(bytes))
            case "http":
                _ = HTTPServer.parseHead(ArraySlice(bytes), limits: HTTPServer.Limits())
            default:
                fatalError("unknown fuzz target \(target): one of \(names.joined(separator: ", "))")
            }
        } catch let error as any ClassifiedError {
            _ = error.description
        } catch {
            fatalError("\(target): an unclassified error \(type(of: error)): \(error)")
        }
    }
}

#if HUSKIMO_FUZZ
/// The target this libFuzzer binary drives: `HUSKIMO_FUZZ_TARGET`.
let fuzzTarget = ProcessInfo.processInfo.environment["HUSKIMO_FUZZ_TARGET"] ?? "json"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    FuzzTargets.run(fuzzTarget, UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

/// libFuzzer's entry when the program has a main of its own (SwiftPM gives every executable one).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

@main
struct FuzzDriver {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOne(data, size) })
    }
}
#else
/// Without libFuzzer: replays `Tests/Fuzz/corpus/<target>/*` (or the directory given) through every target.
@main
struct CorpusReplay {
    static func main() throws {
        let root =
            CommandLine.arguments.dropFirst().first
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("corpus").path
        var total = 0
        for target in FuzzTargets.names {
            let folder = URL(fileURLWithPath: root).appendingPathComponent(target)
            let files = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
            for file in files.sorted() {
                let bytes = try [UInt8](Data(contentsOf: folder.appendingPathComponent(file)))
                bytes.withUnsafeBytes { FuzzTargets.run(target, $0) }
                total += 1
            }
            print("\(target): \(files.count) inputs")
        }
        print("replayed \(total) inputs: no crash")
    }
}
#endif
