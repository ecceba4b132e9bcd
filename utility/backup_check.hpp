// Checks the members of a physical backup's archives against the server's
// backup_manifest and pg_warden's own list of WAL segments.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "backup_catalog.hpp"
#include "backup_manifest.hpp"
#include "tar_members.hpp"

namespace warden {

class BackupContentCheck {
public:
    // wal_expected: the WAL segments recorded at backup time, or null while the backup
    // is being taken (the segments found are then collected into wal_found()).
    BackupContentCheck(const BackupManifest& manifest, const std::vector<CatalogFile>* wal_expected);

    // The path a member of an archive has in the data directory ("" = base archive).
    static std::string data_path(const std::string& tablespace_oid, const std::string& member);

    // Before a member's content is read or written: its name is canonical, its type one
    // that BASE_BACKUP writes there (a symbolic link only at pg_tblspc/OID in the base
    // archive), no holes, and a file is expected (backup_manifest, or backup.json for
    // WAL) with exactly this size, once. Throws warden::Error naming the member.
    void admit(const std::string& tablespace_oid, const TarMember& m);
    // After a file's content was hashed: the checksum matches what was recorded.
    void check_content(const std::string& tablespace_oid, const TarMember& m);
    // Both, for members hashed before they are checked (while a backup is taken).
    void check(const std::string& tablespace_oid, const TarMember& m);
    // Throws when a file of the manifest or a recorded WAL segment never appeared.
    void finish();

    const std::vector<CatalogFile>& wal_found() const { return wal_found_; }

private:
    const BackupManifest& manifest_;
    const std::vector<CatalogFile>* wal_expected_;
    std::set<std::string> seen_;
    std::vector<CatalogFile> wal_found_;
};

// Throws unless every segment from the manifest's WAL ranges is among `wal`, and
// returns the segment size (read from the segments themselves).
std::uint64_t check_wal_range(const BackupManifest& manifest, const std::vector<CatalogFile>& wal);

bool is_wal_segment_name(const std::string& name);

}  // namespace warden
