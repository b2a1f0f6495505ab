// Package hdfs is a storage.Store on HDFS, for hdfs://namenode:port/path URLs.
// Data moves through github.com/colinmarc/hdfs/v2; the two namespace calls
// that must be atomic go straight to the namenode (see below).
//
// Guarantees, on top of the storage package documentation:
//
//   - Put and PutIfAbsent write the content to a temporary file next to the
//     target (".protolake-tmp-*", never returned by List) and close it, which
//     completes the file on the namenode. Only then does the content get its
//     real name, by a rename, so readers never see a partial object.
//   - Put renames with overwrite (colinmarc/hdfs Rename, namenode rename2
//     with OVERWRITE): the target is replaced atomically.
//   - PutIfAbsent renames with the namenode's rename2 call WITHOUT the
//     OVERWRITE option. The namenode performs a rename as one operation under
//     its namespace write lock and, without OVERWRITE, throws
//     FileAlreadyExistsException when the destination exists (after checking
//     that the source exists). So of many concurrent writers exactly one
//     rename succeeds and every other gets storage.ErrExist. The library's
//     Rename cannot be used: it always passes overwriteDest=true, which would
//     let a second commit replace the first. WebHDFS op=RENAME would also be
//     atomic, but needs the namenode's HTTP port as well; the RPC call needs
//     only the address the client already uses.
//   - If the rename's answer is lost (connection dropped, timeout,
//     cancellation), the store resolves the outcome itself: it deletes the
//     temporary file with the namenode's delete call, whose result says
//     whether the file existed. Deleted means the rename did not happen (and
//     now cannot); absent means it happened, because nobody else knows the
//     temporary name. Only when that resolution fails too is the error
//     storage.ErrAmbiguous.
//   - List walks only the directories that can hold keys with the prefix and
//     returns regular files sorted by key.
//
// Limits: simple authentication only (the user is Config.User, else
// HADOOP_USER_NAME, else the OS user); Kerberos-secured clusters are not
// supported yet. The colinmarc/hdfs client takes no contexts: a context is
// checked between steps and while streaming data, but a namenode or datanode
// call already under way is not interrupted. Empty directories left by Delete
// are not removed.
package hdfs
