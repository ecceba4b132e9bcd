// `warden wal push|fetch|verify` against a remote repository (s3://...). Each command
// brings the objects it needs into a scratch folder, runs the local archive's own logic
// there (wal_archive.hpp: names, checksums, compression, conflicts, identity), and puts
// back what it wrote: the checksum before the data, so a segment never counts as archived
// without it. Layout in the bucket: PREFIX/wal/... exactly as BACKUPS/wal/ on disk.
#pragma once

#include <filesystem>
#include <string>

#include "repository.hpp"
#include "wal_archive.hpp"

namespace warden::repo {

walarchive::PushOutcome wal_push(Repository& repo, const std::filesystem::path& source);
// The same push for bytes the receiver has in memory: written to a scratch file named
// `name` first, so the bucket sees exactly what `wal push NAME` would have sent.
walarchive::PushOutcome wal_push_bytes(Repository& repo, const std::string& name, const std::string& bytes);
// Throws walarchive::NotFound only when the object does not exist.
void wal_fetch(Repository& repo, const std::string& name, const std::filesystem::path& dest);

struct RemoteVerify {
    walarchive::VerifyReport report;
    std::size_t backups_checked = 0;
};
RemoteVerify wal_verify(Repository& repo);

// `wal status` of the bucket: segments, bytes and the newest segment from the listing
// (its age from LastModified); the receiver fields stay empty.
walarchive::ArchiveStatus wal_status(Repository& repo);

// Brings every backup's backup.json into scratch/ID/backup.json (what load_catalog reads).
void fetch_catalog(Repository& repo, const std::filesystem::path& scratch);

}  // namespace warden::repo
