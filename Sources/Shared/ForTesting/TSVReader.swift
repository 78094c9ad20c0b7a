/// Reads the staged format back (tests): rows of fields, `nil` for `\N`.
package enum TSVReader {
    package static func rows(_ bytes: [UInt8]) -> [[String?]] {
        var rows: [[String?]] = []
        var row: [String?] = []
        var field: [UInt8] = []
        var isNull = false
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == 0x5C, i + 1 < bytes.count {
                let next = bytes[i + 1]
                if next == 0x4E, field.isEmpty, i + 2 == bytes.count || bytes[i + 2] == 0x09 || bytes[i + 2] == 0x0A {
                    isNull = true
                } else {
                    field.append(next)
                }
                i += 2
                continue
            }
            if b == 0x09 || b == 0x0A {
                row.append(isNull ? nil : String(decoding: field, as: UTF8.self))
                field.removeAll(keepingCapacity: true)
                isNull = false
                if b == 0x0A {
                    rows.append(row)
                    row = []
                }
            } else {
                field.append(b)
            }
            i += 1
        }
        return rows
    }
}
