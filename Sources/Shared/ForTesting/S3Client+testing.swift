package import HuskimoCore

extension S3Client {
    /// Creates the bucket; an existing bucket of ours is fine.
    package func createBucket() throws {
        var body: [UInt8]? = nil
        if config.region != "us-east-1" {
            body = Array(
                """
                <CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">\
                <LocationConstraint>\(config.region)</LocationConstraint></CreateBucketConfiguration>
                """.utf8)
        }
        let response = try http.execute(request(.PUT, key: nil, body: body ?? []))
        if response.status == 200 { return }
        let error = S3Client.error(response, request(.PUT, key: nil))
        if error.code == "BucketAlreadyOwnedByYou" { return }
        throw error
    }

    /// Deletes every object under `prefix`. A prefix is taken as a folder: `a/b` deletes `a/b/…`, never `a/bc`.
    @discardableResult
    package func deleteFolder(_ prefix: String) throws -> Int {
        let folder = prefix.isEmpty || prefix.hasSuffix("/") ? prefix : prefix + "/"
        return try delete(list(prefix: folder).map(\.key))
    }
}
