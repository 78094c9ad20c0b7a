import Foundation
import HuskimoTesting
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore

@Suite struct JSONScannerTests {
    /// Strings of every length and alignment, with quotes, backslashes, multi-byte UTF-8 and escapes anywhere in
    /// the 8-byte words the scanner skips: each decodes to exactly what Foundation's encoder wrote.
    @Test func stringsAtEveryAlignmentDecodeExactly() throws {
        var seed: UInt64 = 7
        let pieces = ["a", "\"", "\\", "é", "😀", "\t", "\n", "/", "x y", "\u{7F}", "\u{1F}", "中"]
        for length in 0..<40 {
            for pad in 0..<9 {
                var text = ""
                for _ in 0..<length {
                    seed = seed &* 6364136223846793005 &+ 1442695040888963407
                    text += pieces[Int(seed >> 59) % pieces.count]
                }
                let encoded = try JSONEncoder().encode(["k": text])
                let json = Array(String(repeating: " ", count: pad).utf8) + Array(encoded)
                try json.withUnsafeBytes { bytes in
                    var scanner = JSONScanner(bytes)
                    var decoded: String?
                    try scanner.forEachMember { scanner, key in
                        #expect(scanner.key(key, is: Array("k".utf8)))
                        decoded = try scanner.string(try scanner.readValue())
                    }
                    #expect(decoded == text, "length \(length), pad \(pad)")
                    #expect(scanner.position == json.count)
                }
            }
        }
    }

    @Test(arguments: ["{\"k\": \"tab\there\"}", "{\"k\": \"nl\nhere in a longer string\"}", "{\"k\": \"unterminated and long enough"])
    func rawControlBytesAndUnterminatedStringsAreErrors(_ json: String) {
        #expect(throws: JSONError.self) {
            try Array(json.utf8).withUnsafeBytes { bytes in
                var scanner = JSONScanner(bytes)
                try scanner.forEachMember { scanner, _ in _ = try scanner.readValue() }
            }
        }
    }
}
