internal import CRabbitMQ
import Foundation

/// A value in an AMQP field table (queue arguments, message headers, `x-death`).
package enum AMQPValue: Sendable, Hashable {
    case string(String)
    case int(Int64)
    case bool(Bool)
    case table([String: AMQPValue])
    case array([AMQPValue])

    package var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    package var intValue: Int64? {
        if case .int(let i) = self { return i }
        return nil
    }
}

package typealias AMQPTable = [String: AMQPValue]

/// Owns the C memory of tables built for one rabbitmq-c call; frees it all on deinit.
final class AMQPTableArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    deinit { for pointer in allocations { free(pointer) } }

    func bytes(_ text: String) -> amqp_bytes_t {
        var utf8 = Array(text.utf8)
        let count = utf8.count
        let pointer = malloc(max(count, 1))!
        allocations.append(pointer)
        utf8.withUnsafeMutableBytes { pointer.copyMemory(from: $0.baseAddress!, byteCount: count) }
        return CRabbitMQ_bytes(pointer, count)
    }

    func table(_ table: AMQPTable) -> amqp_table_t {
        var result = amqp_table_t()
        guard !table.isEmpty else { return result }
        let entries = malloc(MemoryLayout<amqp_table_entry_t>.stride * table.count)!
        allocations.append(entries)
        let typed = entries.bindMemory(to: amqp_table_entry_t.self, capacity: table.count)
        for (index, key) in table.keys.sorted().enumerated() {
            typed[index] = amqp_table_entry_t(key: bytes(key), value: value(table[key]!))
        }
        result.num_entries = Int32(table.count)
        result.entries = typed
        return result
    }

    private func value(_ value: AMQPValue) -> amqp_field_value_t {
        switch value {
        case .string(let s): return CRabbitMQ_value_bytes(bytes(s))
        case .int(let i): return CRabbitMQ_value_i64(i)
        case .bool(let b): return CRabbitMQ_value_bool(b ? 1 : 0)
        case .table(let t): return CRabbitMQ_value_table(table(t))
        case .array(let items):
            var array = amqp_array_t()
            if !items.isEmpty {
                let raw = malloc(MemoryLayout<amqp_field_value_t>.stride * items.count)!
                allocations.append(raw)
                let typed = raw.bindMemory(to: amqp_field_value_t.self, capacity: items.count)
                for (index, item) in items.enumerated() { typed[index] = self.value(item) }
                array.num_entries = Int32(items.count)
                array.entries = typed
            }
            return CRabbitMQ_value_array(array)
        }
    }
}

extension amqp_bytes_t {
    var string: String {
        guard len > 0, let bytes else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: bytes, count: len), as: UTF8.self)
    }

    var array: [UInt8] {
        guard len > 0, let bytes else { return [] }
        return Array(UnsafeRawBufferPointer(start: bytes, count: len))
    }
}

enum AMQPTableReader {
    static func table(_ table: amqp_table_t) -> AMQPTable {
        var result: AMQPTable = [:]
        guard table.num_entries > 0, let entries = table.entries else { return result }
        for index in 0..<Int(table.num_entries) {
            let entry = entries[index]
            if let v = value(entry.value) { result[entry.key.string] = v }
        }
        return result
    }

    static func value(_ field: amqp_field_value_t) -> AMQPValue? {
        switch Character(UnicodeScalar(field.kind)) {
        case "S", "x": return .string(field.value.bytes.string)
        case "t": return .bool(field.value.boolean != 0)
        case "b": return .int(Int64(field.value.i8))
        case "B": return .int(Int64(field.value.u8))
        case "s": return .int(Int64(field.value.i16))
        case "u": return .int(Int64(field.value.u16))
        case "I": return .int(Int64(field.value.i32))
        case "i": return .int(Int64(field.value.u32))
        case "l": return .int(field.value.i64)
        case "L", "T": return .int(Int64(truncatingIfNeeded: field.value.u64))
        case "F": return .table(table(field.value.table))
        case "A":
            var items: [AMQPValue] = []
            let array = field.value.array
            if array.num_entries > 0, let entries = array.entries {
                for index in 0..<Int(array.num_entries) {
                    if let v = value(entries[index]) { items.append(v) }
                }
            }
            return .array(items)
        default: return nil
        }
    }
}
