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
// Throws walarchive::NotFound only when the object does not exist.
void wal_fetch(Repository& repo, const std::string& name, const std::filesystem::path& dest);

struct RemoteVerify {
    walarchive::VerifyReport report;
    std::size_t backups_checked = 0;
};
RemoteVerify wal_verify(Repository& repo);

// Brings every backup's backup.json into scratch/ID/backup.json (what load_catalog reads).
void fetch_catalog(Repository& repo, const std::filesystem::path& scratch);

}  // namespace warden::repo
