extension String {
    /// Text from outside (an API's error, a message's field) as it may reach a log line, a parked message's reason or
    /// a terminal: control characters (C0, DEL, C1: newlines that forge log lines, escape sequences that rewrite a
    /// terminal, a NUL that C cuts text at) become spaces, and at most `limit` characters are kept.
    package func printable(limit: Int = 500) -> String {
        String(
            String.UnicodeScalarView(
                unicodeScalars.prefix(limit).map { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) ? " " : $0 }))
    }
}
