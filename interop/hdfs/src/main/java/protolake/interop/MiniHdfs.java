package protolake.interop;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;
import java.util.concurrent.CountDownLatch;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hdfs.MiniDFSCluster;

/**
 * MiniHdfs runs a MiniDFSCluster (one namenode, one datanode) on 127.0.0.1
 * until it is killed.
 *
 * <p>Usage: {@code MiniHdfs BASE_DIR RPC_PORT HTTP_PORT PORTS_FILE}. Port 0
 * picks a free port. When the cluster is up it writes PORTS_FILE (atomically,
 * via a rename) with the lines {@code rpc=PORT} and {@code http=PORT}: the
 * namenode RPC port (hdfs://127.0.0.1:PORT) and the namenode HTTP port, which
 * serves WebHDFS (http://127.0.0.1:PORT/webhdfs/v1/...).
 *
 * <p>Everything binds to 127.0.0.1 and datanodes register as 127.0.0.1, so
 * clients that connect to the datanode address the namenode returns (the Go
 * client github.com/colinmarc/hdfs/v2, WebHDFS redirects) reach it.
 * Permissions are off: the tests act as whatever user they run as.
 */
public final class MiniHdfs {
  public static void main(String[] args) throws Exception {
    if (args.length != 4) {
      System.err.println("usage: MiniHdfs BASE_DIR RPC_PORT HTTP_PORT PORTS_FILE");
      System.exit(2);
    }
    File base = new File(args[0]);
    int rpcPort = Integer.parseInt(args[1]);
    int httpPort = Integer.parseInt(args[2]);
    File portsFile = new File(args[3]);

    Configuration conf = new Configuration();
    conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, base.getAbsolutePath());
    conf.setBoolean("dfs.permissions.enabled", false);
    conf.setBoolean("dfs.webhdfs.enabled", true);
    conf.set("dfs.namenode.rpc-bind-host", "127.0.0.1");
    conf.set("dfs.namenode.http-bind-host", "127.0.0.1");
    conf.set("dfs.datanode.hostname", "127.0.0.1");
    conf.set("dfs.datanode.address", "127.0.0.1:0");
    conf.set("dfs.datanode.http.address", "127.0.0.1:0");
    conf.set("dfs.datanode.ipc.address", "127.0.0.1:0");
    conf.setBoolean("dfs.client.use.datanode.hostname", true);
    // One datanode: never try to replace it in a write pipeline.
    conf.setInt("dfs.replication", 1);
    conf.set("dfs.client.block.write.replace-datanode-on-failure.policy", "NEVER");
    // Small JVM on a shared machine.
    conf.setInt("dfs.namenode.handler.count", 8);
    conf.setInt("dfs.datanode.handler.count", 4);

    MiniDFSCluster cluster = new MiniDFSCluster.Builder(conf, base)
        .nameNodePort(rpcPort)
        .nameNodeHttpPort(httpPort)
        .numDataNodes(1)
        .format(true)
        .manageNameDfsDirs(true)
        .checkExitOnShutdown(false)
        .build();
    cluster.waitActive();

    int rpc = cluster.getNameNodePort();
    int http = cluster.getNameNode().getHttpAddress().getPort();
    writeAtomically(portsFile, "rpc=" + rpc + "\nhttp=" + http + "\n");
    System.out.println("MiniHdfs up: hdfs://127.0.0.1:" + rpc + " webhdfs http://127.0.0.1:" + http);
    System.out.flush();

    CountDownLatch done = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      try {
        cluster.shutdown();
      } finally {
        done.countDown();
      }
    }));
    done.await();
  }

  private static void writeAtomically(File f, String s) throws IOException {
    File tmp = new File(f.getPath() + ".tmp");
    Files.write(tmp.toPath(), s.getBytes(StandardCharsets.UTF_8));
    Files.move(tmp.toPath(), f.toPath(), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
  }
}
