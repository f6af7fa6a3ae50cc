package flinkgitops.testjobs;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;

/** Replaces a file's content atomically (write a hidden temp file, then rename over). */
final class AtomicFile {
    private AtomicFile() {}

    static void write(String dir, String name, String text) throws IOException {
        Path parent = Paths.get(dir);
        Files.createDirectories(parent);
        Path tmp = parent.resolve("." + name + ".tmp");
        Files.write(tmp, text.getBytes(StandardCharsets.UTF_8));
        Files.move(
                tmp,
                parent.resolve(name),
                StandardCopyOption.ATOMIC_MOVE,
                StandardCopyOption.REPLACE_EXISTING);
    }
}
