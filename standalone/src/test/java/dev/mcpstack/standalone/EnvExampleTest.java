package dev.mcpstack.standalone;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** Every environment variable a module's configuration reads is documented in .env.example. */
class EnvExampleTest {
  private static final Path ROOT = Path.of("..");

  @Test
  void everyVariableTheConfigurationReadsIsInEnvExample() throws IOException {
    Set<String> documented =
        Files.readAllLines(ROOT.resolve(".env.example")).stream()
            .map(String::trim)
            .filter(l -> !l.isEmpty() && !l.startsWith("#") && l.contains("="))
            .map(l -> l.substring(0, l.indexOf('=')))
            .collect(Collectors.toSet());
    Pattern hocon = Pattern.compile("\\$\\{\\?([A-Z][A-Z0-9_]*)}");
    Pattern logback = Pattern.compile("\\$\\{([A-Z][A-Z0-9_]*):-");
    Set<String> used = new TreeSet<>();
    try (Stream<Path> files = Files.walk(ROOT, 5)) {
      for (Path f :
          files
              .filter(p -> p.toString().contains("src" + java.io.File.separator + "main" + java.io.File.separator + "resources"))
              .filter(p -> p.toString().endsWith(".conf") || p.toString().endsWith(".xml"))
              .toList()) {
        String text = Files.readString(f);
        for (Pattern pattern : new Pattern[] {hocon, logback}) {
          Matcher m = pattern.matcher(text);
          while (m.find()) {
            used.add(m.group(1));
          }
        }
      }
    }
    assertTrue(used.size() > 20, "found the modules' configuration: " + used);
    used.removeAll(documented);
    assertTrue(used.isEmpty(), "missing from .env.example: " + used);
  }
}
