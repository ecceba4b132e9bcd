// Block-level incremental backups (docs/backup.md, "Incremental and differential
// backups"): which files of a data directory are copied block by block, which blocks of
// them changed since the parent backup, and the block map an incremental backup stores.
// Pure logic: the utility streams the pages through here (utility/backup_incremental.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lsn.hpp"

namespace warden {

inline constexpr std::size_t kBlockSize = 8192;

enum class FileCopy {
    whole,   // not a relation's main fork, or a fork whose pages may change without a new LSN
    blocks,  // a main fork: only the blocks that changed since the parent
};

// How a data-directory path (as in backup_manifest: "base/5/16384.1",
// "pg_tblspc/16390/PG_15_202209061/5/16400") is copied. Only main-fork segments of
// relations are copied block by block; the free space map and visibility map (changed
// without a page LSN update), init forks and every other file are copied whole.
FileCopy copy_mode_for(std::string_view path);

// Whether block BLKNO of a main fork must be stored, given the page as read now, the
// number of blocks the parent had for this file, and the parent's start LSN. A block
// is stored when it lies beyond the parent's copy, when its page LSN is at or after the
// parent's start, when the page is new (all-zero header) or when its header is not a
// valid PostgreSQL 15 page header (nothing in it can be trusted). A partial block (the
// tail of a file) is always stored.
bool block_changed(const unsigned char* page, std::size_t len, std::uint64_t blkno,
                   std::uint64_t parent_blocks, Lsn parent_start);

// The LSN in a page header (pd_lsn: two native 32-bit halves, high first).
Lsn page_lsn(const unsigned char* page);

// One main-fork file of an incremental backup: its size in this backup and the blocks
// stored in it, each with the SHA-256 of its bytes.
struct BlockFile {
    std::string path;
    std::uint64_t size = 0;
    std::vector<std::uint64_t> blocks;  // ascending
    std::vector<std::string> sha256;    // one per stored block
};

// incremental.json: what an incremental or differential backup adds to its parent.
struct BlockMap {
    std::string parent;      // the parent backup's ID
    std::string parent_start_lsn;
    std::vector<BlockFile> files;  // main forks stored block by block

    const BlockFile* find(std::string_view path) const;
};

std::string block_map_to_json(const BlockMap& map);
// Throws warden::Error naming what is wrong (unreadable, unsorted or duplicate blocks,
// a block beyond the file's size, a path that is not a main fork).
BlockMap block_map_from_json(std::string_view text);

// The name of the member holding block BLKNO of file FILE_INDEX in blocks.tar, and back.
std::string block_member_name(std::size_t file_index, std::uint64_t blkno);
// False when NAME is not such a name.
bool parse_block_member_name(std::string_view name, std::size_t& file_index, std::uint64_t& blkno);

// Number of blocks a file of SIZE bytes has (the last one possibly partial).
inline std::uint64_t block_count(std::uint64_t size) { return (size + kBlockSize - 1) / kBlockSize; }

}  // namespace warden
