package dev.mcpstack.standalone;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.SafeConstructor;

/**
 * Static checks of the deployment files under {@code deploy/} (no Docker engine or Kubernetes
 * cluster needed): every YAML parses, images are pinned, compose services and Kubernetes
 * containers are bounded, probed and hardened, the Dockerfile is pinned and non-root, and every
 * environment variable the files use is documented in {@code .env.example}.
 */
class DeployFilesTest {

  /** Image of our own nodes; containers of other images keep their own environment contract. */
  private static final String OWN_IMAGE = "mcp-stack/mcp-stack";

  /** {@code ${VAR}}, {@code ${VAR:-x}}, {@code ${VAR:?msg}}; {@code $${...}} is an escaped dollar. */
  private static final Pattern INTERPOLATION =
      Pattern.compile("(?<!\\$)\\$\\{([A-Za-z_][A-Za-z0-9_]*)((?::?[-?+])[^}]*)?}");

  private static final Pattern ENV_EXAMPLE_LINE =
      Pattern.compile("^\\s*#?\\s*([A-Z][A-Z0-9_]*)=.*$");

  private static final Set<String> WORKLOAD_KINDS =
      Set.of("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod");

  private static final Pattern SECRET_NAME =
      Pattern.compile(".*(PASSWORD|TOKEN|SECRET|API_KEYS|API_KEY|PRIVATE_KEY).*");

  private static final Pattern VARIABLE = Pattern.compile("[A-Z][A-Z0-9_]*");

  private static Path root;
  private static Path deploy;

  @BeforeAll
  static void locateRepository() {
    // Surefire runs in the module directory (standalone/): the repository root is its parent.
    root = Path.of("..").toAbsolutePath().normalize();
    deploy = root.resolve("deploy");
    assertTrue(
        Files.isDirectory(deploy),
        "expected the deploy/ directory at " + deploy + " (run from the standalone module)");
  }

  // ---- every YAML file ------------------------------------------------------------------------

  @Test
  void everyYamlFileParses() throws IOException {
    List<Path> files = yamlFiles(deploy);
    assertFalse(files.isEmpty(), "no YAML files under deploy/");
    List<String> problems = new ArrayList<>();
    for (Path file : files) {
      try {
        List<Object> docs = load(file);
        if (docs.stream().allMatch(Objects::isNull)) {
          problems.add(rel(file) + ": empty");
        }
      } catch (RuntimeException e) {
        problems.add(rel(file) + ": " + e.getMessage());
      }
    }
    assertNoProblems("YAML files that do not parse", problems);
  }

  @Test
  void everyImageIsPinned() throws IOException {
    List<String> problems = new ArrayList<>();
    int images = 0;
    for (Path file : yamlFiles(deploy)) {
      for (Object doc : load(file)) {
        List<String> found = new ArrayList<>();
        collectImages(doc, found);
        images += found.size();
        for (String image : found) {
          String why = unpinned(interpolateDefaults(image));
          if (why != null) {
            problems.add(rel(file) + ": image " + image + " " + why);
          }
        }
      }
    }
    assertTrue(images > 0, "no image references found under deploy/");
    assertNoProblems("unpinned images", problems);
  }

  // ---- Docker Compose -------------------------------------------------------------------------

  @Test
  void composeServicesAreBoundedHealthcheckedAndHardened() throws IOException {
    Map<String, Object> services = composeServices();
    assertTrue(
        services.keySet().containsAll(
            List.of("postgres", "api", "worker-1", "worker-2", "model-runner", "sim", "prometheus", "grafana")),
        "compose services: " + services.keySet());
    List<String> problems = new ArrayList<>();
    for (Map.Entry<String, Object> entry : services.entrySet()) {
      String name = entry.getKey();
      Map<String, Object> service = map(entry.getValue());
      Map<String, Object> resources = map(path(service, "deploy", "resources"));
      for (String section : List.of("limits", "reservations")) {
        Map<String, Object> values = map(resources.get(section));
        for (String key : List.of("cpus", "memory")) {
          if (values.get(key) == null || values.get(key).toString().isBlank()) {
            problems.add(name + ": deploy.resources." + section + "." + key + " missing");
          }
        }
      }
      boolean oneShot = "no".equals(String.valueOf(service.get("restart")));
      Map<String, Object> healthcheck = map(service.get("healthcheck"));
      boolean hasHealthcheck =
          !healthcheck.isEmpty() && !Boolean.TRUE.equals(healthcheck.get("disable"))
              && healthcheck.get("test") != null;
      if (!hasHealthcheck && !oneShot) {
        problems.add(name + ": no healthcheck (only one-shot services, restart: \"no\", may omit it)");
      }
      if (!oneShot && !"unless-stopped".equals(service.get("restart"))) {
        problems.add(name + ": restart should be unless-stopped, is " + service.get("restart"));
      }
      List<Object> securityOpt = list(service.get("security_opt"));
      if (securityOpt.stream().map(String::valueOf).noneMatch(o -> o.replace(" ", "").equals("no-new-privileges:true"))) {
        problems.add(name + ": security_opt lacks no-new-privileges:true");
      }
    }
    assertNoProblems("compose services", problems);
  }

  @Test
  void composeClusterNodesFollowTheNodeContract() throws IOException {
    Map<String, Object> services = composeServices();
    Map<String, String> roles = Map.of("api", "api", "worker-1", "worker", "worker-2", "worker");
    List<String> problems = new ArrayList<>();
    for (Map.Entry<String, String> expected : roles.entrySet()) {
      Map<String, Object> env = environment(map(services.get(expected.getKey())));
      if (!expected.getValue().equals(String.valueOf(env.get("NODE_ROLES")))) {
        problems.add(expected.getKey() + ": NODE_ROLES should be " + expected.getValue() + ", is " + env.get("NODE_ROLES"));
      }
      if (!expected.getKey().equals(String.valueOf(env.get("ARTERY_HOST")))) {
        problems.add(expected.getKey() + ": ARTERY_HOST should be its service name");
      }
      for (String var : List.of("SEED_NODES", "DB_URL", "DB_PASSWORD", "MODEL_RUNNER_URL")) {
        if (env.get(var) == null) {
          problems.add(expected.getKey() + ": " + var + " not set");
        }
      }
      if (!"off".equals(String.valueOf(env.get("EMBEDDED_SIMULATOR")))) {
        problems.add(expected.getKey() + ": EMBEDDED_SIMULATOR should be off on cluster nodes");
      }
    }
    assertNoProblems("compose cluster nodes", problems);
  }

  @Test
  void composeTlsOverlayGivesEveryClusterNodeItsStores() throws IOException {
    Map<String, Object> overlay = map(map(load(composeTlsFile()).get(0)).get("services"));
    List<String> problems = new ArrayList<>();
    for (Map.Entry<String, Object> entry : composeServices().entrySet()) {
      if (!environment(map(entry.getValue())).containsKey("NODE_ROLES")) {
        continue; // not a cluster node
      }
      Map<String, Object> service = map(overlay.get(entry.getKey()));
      if (service.isEmpty()) {
        problems.add(entry.getKey() + ": missing from " + rel(composeTlsFile()));
        continue;
      }
      Map<String, Object> env = environment(service);
      if (!"tls-tcp".equals(env.get("ARTERY_TRANSPORT"))) {
        problems.add(entry.getKey() + ": ARTERY_TRANSPORT should be tls-tcp");
      }
      List<String> readOnlyTargets = list(service.get("volumes")).stream().map(String::valueOf)
          .filter(v -> v.endsWith(":ro")).map(v -> v.split(":")[1] + "/").toList();
      for (String store : List.of("ARTERY_TLS_KEYSTORE", "ARTERY_TLS_TRUSTSTORE")) {
        String file = String.valueOf(env.get(store));
        if (readOnlyTargets.stream().noneMatch(file::startsWith)) {
          problems.add(entry.getKey() + ": " + store + "=" + file + " is not on a read-only volume");
        }
        if (!String.valueOf(env.get(store + "_PASSWORD")).startsWith("${" + store + "_PASSWORD:?")) {
          problems.add(entry.getKey() + ": " + store + "_PASSWORD should be required from .env");
        }
      }
    }
    assertNoProblems(rel(composeTlsFile()), problems);
  }

  // ---- Kubernetes -----------------------------------------------------------------------------

  @Test
  void kubernetesContainersAreBoundedProbedAndHardened() throws IOException {
    List<String> problems = new ArrayList<>();
    int containers = 0;
    for (K8sDoc doc : k8sDocs()) {
      if (!WORKLOAD_KINDS.contains(doc.kind())) {
        continue;
      }
      Map<String, Object> podSpec = podSpec(doc);
      Map<String, Object> podSecurity = map(podSpec.get("securityContext"));
      boolean job = doc.kind().equals("Job") || doc.kind().equals("CronJob");
      for (String group : List.of("initContainers", "containers")) {
        for (Object c : list(podSpec.get(group))) {
          containers++;
          Map<String, Object> container = map(c);
          String where = doc.where() + " " + group + "/" + container.get("name");
          for (String section : List.of("requests", "limits")) {
            Map<String, Object> values = map(path(container, "resources", section));
            for (String key : List.of("cpu", "memory")) {
              if (values.get(key) == null) {
                problems.add(where + ": resources." + section + "." + key + " missing");
              }
            }
          }
          if (group.equals("containers") && !job) {
            for (String probe : List.of("readinessProbe", "livenessProbe")) {
              if (container.get(probe) == null) {
                problems.add(where + ": " + probe + " missing");
              }
            }
          }
          Map<String, Object> security = map(container.get("securityContext"));
          Object runAsNonRoot = security.containsKey("runAsNonRoot")
              ? security.get("runAsNonRoot") : podSecurity.get("runAsNonRoot");
          if (!Boolean.TRUE.equals(runAsNonRoot)) {
            problems.add(where + ": securityContext.runAsNonRoot is not true");
          }
          if (!Boolean.FALSE.equals(security.get("allowPrivilegeEscalation"))) {
            problems.add(where + ": securityContext.allowPrivilegeEscalation is not false");
          }
          for (Object e : list(container.get("env"))) {
            Map<String, Object> env = map(e);
            String name = String.valueOf(env.get("name"));
            if (SECRET_NAME.matcher(name).matches() && env.containsKey("value")) {
              problems.add(where + ": secret " + name + " set inline; use valueFrom.secretKeyRef");
            }
          }
        }
      }
    }
    assertTrue(containers > 0, "no Kubernetes workloads found under deploy/k8s");
    assertNoProblems("Kubernetes containers", problems);
  }

  @Test
  void kubernetesNodesFollowTheClusterContract() throws IOException {
    List<String> problems = new ArrayList<>();
    Map<String, Integer> replicasByRole = new LinkedHashMap<>();
    for (K8sDoc doc : k8sDocs()) {
      if (!doc.kind().equals("Deployment")) {
        continue;
      }
      Map<String, Object> labels = map(path(doc.body(), "spec", "template", "metadata", "labels"));
      if (!"mcp-stack".equals(labels.get("app"))) {
        problems.add(doc.where() + ": pod label app=mcp-stack missing (Cluster Bootstrap selects pods by it)");
      }
      replicasByRole.put(String.valueOf(labels.get("role")), (Integer) path(doc.body(), "spec", "replicas"));
      Map<String, Object> podSpec = podSpec(doc);
      if (!Integer.valueOf(45).equals(podSpec.get("terminationGracePeriodSeconds"))) {
        problems.add(doc.where() + ": terminationGracePeriodSeconds should be 45");
      }
      for (Object c : list(podSpec.get("containers"))) {
        Map<String, Object> container = map(c);
        Set<String> portNames = list(container.get("ports")).stream()
            .map(p -> String.valueOf(map(p).get("name"))).collect(Collectors.toSet());
        if (!portNames.contains("management")) {
          problems.add(doc.where() + ": no container port named management (bootstrap probes it)");
        }
        boolean podIp = list(container.get("env")).stream().map(DeployFilesTest::map)
            .anyMatch(e -> "ARTERY_HOST".equals(e.get("name"))
                && "status.podIP".equals(path(e, "valueFrom", "fieldRef", "fieldPath")));
        if (!podIp) {
          problems.add(doc.where() + ": ARTERY_HOST must come from fieldRef status.podIP");
        }
        if (!"/ready".equals(path(container, "readinessProbe", "httpGet", "path"))
            || !"management".equals(path(container, "readinessProbe", "httpGet", "port"))) {
          problems.add(doc.where() + ": readinessProbe should be httpGet /ready on port management");
        }
        if (!"/alive".equals(path(container, "livenessProbe", "httpGet", "path"))
            || !"management".equals(path(container, "livenessProbe", "httpGet", "port"))) {
          problems.add(doc.where() + ": livenessProbe should be httpGet /alive on port management");
        }
      }
    }
    assertEquals(Map.of("api", 2, "worker", 3), replicasByRole, "Deployments by role and replicas");
    assertNoProblems("Kubernetes cluster nodes", problems);
  }

  @Test
  void networkPolicyAdmitsOnlyTheStackToRemotingAndManagement() throws IOException {
    Map<String, Object> settings = configMapData();
    int artery = Integer.parseInt(String.valueOf(settings.get("ARTERY_PORT")));
    int management = Integer.parseInt(String.valueOf(settings.get("MANAGEMENT_PORT")));
    int api = Integer.parseInt(String.valueOf(settings.get("API_PORT")));
    int metrics = Integer.parseInt(String.valueOf(settings.get("METRICS_PORT")));
    Map<String, Integer> portsByName = containerPortsByName();
    Map<String, Object> stackPods = Map.of("podSelector", Map.of("matchLabels", Map.of("app", "mcp-stack")));
    List<String> problems = new ArrayList<>();
    Set<Integer> fromStack = new HashSet<>();
    Set<Integer> toApiPods = new HashSet<>();
    int policies = 0;
    for (K8sDoc doc : k8sDocs()) {
      if (!doc.kind().equals("NetworkPolicy")) {
        continue;
      }
      policies++;
      Map<String, Object> spec = map(doc.body().get("spec"));
      Map<String, Object> selected = map(path(spec, "podSelector", "matchLabels"));
      if (!"mcp-stack".equals(selected.get("app"))) {
        problems.add(doc.where() + ": should select the stack's pods (app=mcp-stack), selects " + selected);
      }
      if (!list(spec.get("policyTypes")).contains("Ingress")) {
        problems.add(doc.where() + ": policyTypes lacks Ingress");
      }
      for (Object r : list(spec.get("ingress"))) {
        Map<String, Object> rule = map(r);
        Set<Integer> ports = new HashSet<>();
        if (list(rule.get("ports")).isEmpty()) {
          ports.addAll(List.of(artery, management, api, metrics)); // no ports: every port
        }
        for (Object p : list(rule.get("ports"))) {
          Object port = map(p).get("port");
          Integer number = port instanceof Integer n ? n : portsByName.get(String.valueOf(port));
          if (number == null) {
            problems.add(doc.where() + ": port " + port + " is no container port");
          } else {
            ports.add(number);
          }
        }
        List<Object> peers = list(rule.get("from"));
        boolean onlyStack = !peers.isEmpty() && peers.stream().allMatch(peer -> stackPods.equals(map(peer)));
        for (int port : List.of(artery, management)) {
          if (ports.contains(port)) {
            if (onlyStack) {
              fromStack.add(port);
            } else {
              problems.add(doc.where() + ": port " + port + " admitted from " + (peers.isEmpty() ? "anywhere" : peers)
                  + "; only podSelector app=mcp-stack may reach it");
            }
          }
        }
        if ("api".equals(selected.get("role")) && ports.contains(api)) {
          toApiPods.add(api);
        }
      }
    }
    assertTrue(policies > 0, "no NetworkPolicy under deploy/k8s");
    if (!fromStack.containsAll(List.of(artery, management))) {
      problems.add("the stack's pods must reach each other on " + artery + " and " + management + ", admitted: " + fromStack);
    }
    if (!toApiPods.contains(api)) {
      problems.add("no policy admits the API port " + api + " on the api pods");
    }
    assertNoProblems("NetworkPolicy", problems);
  }

  @Test
  void kubernetesNodesTalkMutualTlsWithStoresMountedFromASecret() throws IOException {
    Map<String, Object> settings = configMapData();
    List<String> problems = new ArrayList<>();
    if (!"tls-tcp".equals(settings.get("ARTERY_TRANSPORT"))) {
      problems.add("ConfigMap: ARTERY_TRANSPORT should be tls-tcp, is " + settings.get("ARTERY_TRANSPORT"));
    }
    Map<String, Map<String, Object>> exampleSecrets = new LinkedHashMap<>();
    for (Object d : load(deploy.resolve("k8s/secret.example.yaml"))) {
      Map<String, Object> secret = map(d);
      Map<String, Object> keys = new LinkedHashMap<>(map(secret.get("data")));
      keys.putAll(map(secret.get("stringData")));
      exampleSecrets.put(String.valueOf(path(secret, "metadata", "name")), keys);
    }
    int deployments = 0;
    for (K8sDoc doc : k8sDocs()) {
      if (!doc.kind().equals("Deployment")) {
        continue;
      }
      deployments++;
      Map<String, Object> podSpec = podSpec(doc);
      Map<String, Map<String, Object>> secretVolumes = new LinkedHashMap<>();
      for (Object v : list(podSpec.get("volumes"))) {
        Map<String, Object> volume = map(v);
        if (volume.get("secret") != null) {
          secretVolumes.put(String.valueOf(volume.get("name")), map(volume.get("secret")));
        }
      }
      for (Object c : list(podSpec.get("containers"))) {
        Map<String, Object> container = map(c);
        Map<String, Object> env = new LinkedHashMap<>(settings);
        for (Object e : list(container.get("env"))) {
          env.put(String.valueOf(map(e).get("name")), map(e));
        }
        for (String store : List.of("ARTERY_TLS_KEYSTORE", "ARTERY_TLS_TRUSTSTORE")) {
          String file = String.valueOf(env.get(store));
          String secretName = null;
          for (Object m : list(container.get("volumeMounts"))) {
            Map<String, Object> mount = map(m);
            Map<String, Object> secret = secretVolumes.get(String.valueOf(mount.get("name")));
            String dir = mount.get("mountPath") + "/";
            if (secret == null || !file.startsWith(dir)) {
              continue;
            }
            String item = file.substring(dir.length());
            boolean projected = list(secret.get("items")).isEmpty()
                ? !item.contains("/")
                : list(secret.get("items")).stream().anyMatch(i -> item.equals(map(i).get("path")));
            if (!projected) {
              problems.add(doc.where() + ": " + store + "=" + file + " is not a file of secret volume " + mount.get("name"));
            }
            if (!Boolean.TRUE.equals(mount.get("readOnly"))) {
              problems.add(doc.where() + ": the mount of " + mount.get("name") + " should be readOnly");
            }
            secretName = String.valueOf(secret.get("secretName"));
          }
          if (secretName == null) {
            problems.add(doc.where() + ": " + store + "=" + file + " is not on a volume mounted from a Secret");
            continue;
          }
          if (!exampleSecrets.containsKey(secretName)) {
            problems.add(doc.where() + ": secret.example.yaml does not show the Secret " + secretName);
          }
          Object passwordRef = path(map(env.get(store + "_PASSWORD")), "valueFrom", "secretKeyRef");
          if (!secretName.equals(path(map(passwordRef), "name"))) {
            problems.add(doc.where() + ": " + store + "_PASSWORD should come from the Secret " + secretName + " (secretKeyRef)");
          } else if (!exampleSecrets.getOrDefault(secretName, Map.of()).containsKey(String.valueOf(path(map(passwordRef), "key")))) {
            problems.add(doc.where() + ": secret.example.yaml lacks the key " + path(map(passwordRef), "key") + " of " + secretName);
          }
        }
      }
    }
    assertTrue(deployments > 0, "no Deployments under deploy/k8s");
    assertNoProblems("Artery TLS in Kubernetes", problems.stream().distinct().toList());
  }

  @Test
  void kustomizationListsEveryManifestButTheSecretExample() throws IOException {
    Path k8s = deploy.resolve("k8s");
    Map<String, Object> kustomization = map(load(k8s.resolve("kustomization.yaml")).get(0));
    Set<String> listed = list(kustomization.get("resources")).stream().map(String::valueOf)
        .collect(Collectors.toCollection(TreeSet::new));
    Set<String> files = yamlFiles(k8s).stream()
        .map(p -> k8s.relativize(p).toString().replace('\\', '/'))
        .filter(n -> !n.equals("kustomization.yaml") && !n.endsWith(".example.yaml"))
        .collect(Collectors.toCollection(TreeSet::new));
    assertEquals(files, listed, "deploy/k8s/kustomization.yaml resources");
    assertFalse(listed.stream().anyMatch(n -> n.contains("example")), "an example file is deployed");
  }

  // ---- Dockerfile -----------------------------------------------------------------------------

  @Test
  void dockerfileIsPinnedAndRunsAsNonRoot() throws IOException {
    Path dockerfile = deploy.resolve("docker/Dockerfile");
    assertTrue(Files.isRegularFile(dockerfile), "missing " + rel(dockerfile));
    List<String> lines = logicalLines(Files.readString(dockerfile, StandardCharsets.UTF_8));
    List<String> problems = new ArrayList<>();
    Set<String> stages = new HashSet<>();
    String user = null;
    int froms = 0;
    for (String line : lines) {
      String[] words = line.trim().split("\\s+");
      String instruction = words[0].toUpperCase();
      if (instruction.equals("FROM")) {
        froms++;
        List<String> args = new ArrayList<>();
        for (int i = 1; i < words.length; i++) {
          if (!words[i].startsWith("--")) {
            args.add(words[i]);
          }
        }
        String image = args.get(0);
        boolean earlierStage = stages.contains(image.toLowerCase());
        if (args.size() >= 3 && args.get(1).equalsIgnoreCase("AS")) {
          stages.add(args.get(2).toLowerCase());
        }
        if (earlierStage) {
          continue; // FROM <an earlier stage>
        }
        String why = image.contains("$") ? "uses a build argument (cannot be checked)" : unpinned(image);
        if (why != null) {
          problems.add("FROM " + image + " " + why);
        }
      } else if (instruction.equals("USER")) {
        user = words.length > 1 ? words[1] : "";
      }
    }
    assertTrue(froms > 0, "no FROM line in " + rel(dockerfile));
    if (user == null) {
      problems.add("no USER instruction: the image would run as root");
    } else {
      String name = user.split(":")[0];
      if (name.equals("root") || name.equals("0") || name.isBlank()) {
        problems.add("final USER is root (" + user + ")");
      }
    }
    assertNoProblems("Dockerfile", problems);
  }

  // ---- .env.example ---------------------------------------------------------------------------

  @Test
  void everyVariableTheDeployFilesUseIsDocumentedInEnvExample() throws IOException {
    Path envExample = root.resolve(".env.example");
    assertTrue(Files.isRegularFile(envExample), "missing " + envExample);
    Set<String> documented = new HashSet<>();
    for (String line : Files.readAllLines(envExample, StandardCharsets.UTF_8)) {
      Matcher m = ENV_EXAMPLE_LINE.matcher(line);
      if (m.matches()) {
        documented.add(m.group(1));
      }
    }

    Map<String, Set<String>> usedBy = new java.util.TreeMap<>();
    // Compose: every ${VAR} of every compose file and every environment key of our own nodes.
    Path compose = composeFile();
    for (Path file : List.of(compose, composeTlsFile())) {
      Matcher m = INTERPOLATION.matcher(Files.readString(file, StandardCharsets.UTF_8));
      while (m.find()) {
        usedBy.computeIfAbsent(m.group(1), k -> new TreeSet<>()).add(rel(file) + " ${...}");
      }
    }
    for (Map.Entry<String, Object> entry : composeServices().entrySet()) {
      Map<String, Object> service = map(entry.getValue());
      if (String.valueOf(service.get("image")).contains(OWN_IMAGE)) {
        for (String key : environment(service).keySet()) {
          usedBy.computeIfAbsent(key, k -> new TreeSet<>()).add(rel(compose) + " " + entry.getKey());
        }
      }
    }
    // Kubernetes: env of our containers, ConfigMap and Secret keys.
    for (K8sDoc doc : k8sDocs()) {
      if (WORKLOAD_KINDS.contains(doc.kind())) {
        Map<String, Object> podSpec = podSpec(doc);
        for (String group : List.of("initContainers", "containers")) {
          for (Object c : list(podSpec.get(group))) {
            Map<String, Object> container = map(c);
            if (!String.valueOf(container.get("image")).contains(OWN_IMAGE)) {
              continue;
            }
            for (Object e : list(container.get("env"))) {
              usedBy.computeIfAbsent(String.valueOf(map(e).get("name")), k -> new TreeSet<>()).add(doc.where());
            }
          }
        }
      } else if (doc.kind().equals("ConfigMap") || doc.kind().equals("Secret")) {
        for (String section : List.of("data", "stringData")) {
          for (String key : map(doc.body().get(section)).keySet()) {
            if (VARIABLE.matcher(key).matches()) { // not files such as keystore.p12
              usedBy.computeIfAbsent(key, k -> new TreeSet<>()).add(doc.where());
            }
          }
        }
      }
    }

    List<String> missing = usedBy.keySet().stream().filter(v -> !documented.contains(v)).sorted().toList();
    if (!missing.isEmpty()) {
      fail(missing.size() + " variable(s) used under deploy/ but not in .env.example (add NAME=default"
          + " with a one-line comment each):\n"
          + missing.stream().map(v -> "  " + v + "   <- " + usedBy.get(v)).collect(Collectors.joining("\n")));
    }
  }

  // ---- helpers --------------------------------------------------------------------------------

  private record K8sDoc(Path file, int index, String kind, Map<String, Object> body) {
    String where() {
      Object name = path(body, "metadata", "name");
      return rel(file) + "#" + index + " " + kind + "/" + name;
    }
  }

  private static List<K8sDoc> k8sDocs() throws IOException {
    List<K8sDoc> docs = new ArrayList<>();
    for (Path file : yamlFiles(deploy.resolve("k8s"))) {
      List<Object> loaded = load(file);
      for (int i = 0; i < loaded.size(); i++) {
        Map<String, Object> body = map(loaded.get(i));
        Object kind = body.get("kind");
        if (kind != null && body.containsKey("apiVersion")) {
          docs.add(new K8sDoc(file, i, kind.toString(), body));
        }
      }
    }
    assertFalse(docs.isEmpty(), "no Kubernetes manifests under deploy/k8s");
    return docs;
  }

  /** The data of the ConfigMap every node reads through envFrom. */
  private static Map<String, Object> configMapData() throws IOException {
    for (K8sDoc doc : k8sDocs()) {
      if (doc.kind().equals("ConfigMap") && "mcp-stack-config".equals(path(doc.body(), "metadata", "name"))) {
        return map(doc.body().get("data"));
      }
    }
    fail("no ConfigMap mcp-stack-config under deploy/k8s");
    return Map.of();
  }

  private static Map<String, Integer> containerPortsByName() throws IOException {
    Map<String, Integer> ports = new LinkedHashMap<>();
    for (K8sDoc doc : k8sDocs()) {
      if (WORKLOAD_KINDS.contains(doc.kind())) {
        for (Object c : list(podSpec(doc).get("containers"))) {
          for (Object p : list(map(c).get("ports"))) {
            ports.put(String.valueOf(map(p).get("name")), (Integer) map(p).get("containerPort"));
          }
        }
      }
    }
    return ports;
  }

  private static Map<String, Object> podSpec(K8sDoc doc) {
    return switch (doc.kind()) {
      case "Pod" -> map(doc.body().get("spec"));
      case "CronJob" -> map(path(doc.body(), "spec", "jobTemplate", "spec", "template", "spec"));
      default -> map(path(doc.body(), "spec", "template", "spec"));
    };
  }

  private static Path composeFile() {
    Path compose = deploy.resolve("compose/docker-compose.yml");
    assertTrue(Files.isRegularFile(compose), "missing " + rel(compose));
    return compose;
  }

  /** The overlay that turns on Artery's mutual TLS for the Compose cluster. */
  private static Path composeTlsFile() {
    Path overlay = deploy.resolve("compose/compose.artery-tls.yml");
    assertTrue(Files.isRegularFile(overlay), "missing " + rel(overlay));
    return overlay;
  }

  private static Map<String, Object> composeServices() throws IOException {
    Map<String, Object> services = map(map(load(composeFile()).get(0)).get("services"));
    assertFalse(services.isEmpty(), "no services in the compose file");
    return services;
  }

  /** A compose service's environment, whether written as a map or as a KEY=value list. */
  private static Map<String, Object> environment(Map<String, Object> service) {
    Object env = service.get("environment");
    if (env instanceof List<?> entries) {
      Map<String, Object> result = new LinkedHashMap<>();
      for (Object entry : entries) {
        String[] kv = String.valueOf(entry).split("=", 2);
        result.put(kv[0], kv.length > 1 ? kv[1] : null);
      }
      return result;
    }
    return map(env);
  }

  private static List<Path> yamlFiles(Path dir) throws IOException {
    try (Stream<Path> walk = Files.walk(dir)) {
      return walk.filter(Files::isRegularFile)
          .filter(p -> p.getFileName().toString().matches(".*\\.ya?ml$"))
          .sorted()
          .toList();
    }
  }

  private static List<Object> load(Path file) throws IOException {
    LoaderOptions options = new LoaderOptions();
    options.setAllowDuplicateKeys(false);
    Yaml yaml = new Yaml(new SafeConstructor(options));
    List<Object> docs = new ArrayList<>();
    for (Object doc : yaml.loadAll(Files.readString(file, StandardCharsets.UTF_8))) {
      docs.add(doc);
    }
    return docs;
  }

  private static void collectImages(Object node, List<String> out) {
    if (node instanceof Map<?, ?> m) {
      for (Map.Entry<?, ?> e : m.entrySet()) {
        if ("image".equals(e.getKey()) && e.getValue() instanceof String s) {
          out.add(s);
        } else {
          collectImages(e.getValue(), out);
        }
      }
    } else if (node instanceof List<?> l) {
      l.forEach(x -> collectImages(x, out));
    }
  }

  /** Replaces {@code ${VAR:-default}} / {@code ${VAR-default}} by the default; others stay. */
  private static String interpolateDefaults(String value) {
    Matcher m = INTERPOLATION.matcher(value);
    StringBuilder sb = new StringBuilder();
    while (m.find()) {
      String modifier = m.group(2);
      String replacement = m.group(0);
      if (modifier != null && (modifier.startsWith(":-") || modifier.startsWith("-"))) {
        replacement = modifier.substring(modifier.indexOf('-') + 1);
      }
      m.appendReplacement(sb, Matcher.quoteReplacement(replacement));
    }
    m.appendTail(sb);
    return sb.toString();
  }

  /** Why an image reference is not pinned, or null when it has a non-latest tag or a digest. */
  private static String unpinned(String image) {
    if (image.contains("${")) {
      return "depends on a variable without a default";
    }
    if (image.contains("@sha256:")) {
      return null;
    }
    int slash = image.lastIndexOf('/');
    int colon = image.lastIndexOf(':');
    if (colon < slash + 1 || colon == image.length() - 1) {
      return "has no tag";
    }
    String tag = image.substring(colon + 1);
    if (tag.equalsIgnoreCase("latest") || tag.toLowerCase().startsWith("latest-")) {
      return "uses latest";
    }
    return null;
  }

  /** Dockerfile instructions with continuation lines joined, comments and blank lines dropped. */
  private static List<String> logicalLines(String text) {
    List<String> out = new ArrayList<>();
    StringBuilder current = new StringBuilder();
    for (String raw : text.split("\\R")) {
      String line = raw.strip();
      if (current.length() == 0 && (line.isEmpty() || line.startsWith("#"))) {
        continue;
      }
      if (line.endsWith("\\")) {
        current.append(line, 0, line.length() - 1).append(' ');
      } else {
        current.append(line);
        out.add(current.toString());
        current.setLength(0);
      }
    }
    if (current.length() > 0) {
      out.add(current.toString());
    }
    return out;
  }

  private static Object path(Map<String, Object> node, String... keys) {
    Object current = node;
    for (String key : keys) {
      if (!(current instanceof Map<?, ?> m)) {
        return null;
      }
      current = m.get(key);
    }
    return current;
  }

  @SuppressWarnings("unchecked")
  private static Map<String, Object> map(Object o) {
    return o instanceof Map<?, ?> m ? (Map<String, Object>) m : Map.of();
  }

  @SuppressWarnings("unchecked")
  private static List<Object> list(Object o) {
    return o instanceof List<?> l ? (List<Object>) l : List.of();
  }

  private static String rel(Path file) {
    return root.relativize(file.toAbsolutePath().normalize()).toString().replace('\\', '/');
  }

  private static void assertNoProblems(String what, List<String> problems) {
    if (!problems.isEmpty()) {
      fail(what + ":\n  " + String.join("\n  ", problems));
    }
  }
}
