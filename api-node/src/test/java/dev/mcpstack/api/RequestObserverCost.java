package dev.mcpstack.api;


import ch.qos.logback.classic.AsyncAppender;
import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.AppenderBase;
import com.typesafe.config.ConfigFactory;
import dev.mcpstack.shared.ErrorCode;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.pekko.http.javadsl.model.HttpMethods;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.slf4j.LoggerFactory;

/**
 * What observing a request costs the thread that answers it: the metrics, and the access-log line
 * handed to an asynchronous appender (its encoding happens on the appender's thread). A benchmark,
 * not a test (timings do not belong in the suite); docs/benchmarks.md gives the command and figures.
 */
final class RequestObserverCost {
  public static void main(String[] args) {
    AtomicLong delivered = new AtomicLong();
    Logger access = (Logger) LoggerFactory.getLogger("mcp.access");
    AppenderBase<ILoggingEvent> sink =
        new AppenderBase<>() {
          @Override
          protected void append(ILoggingEvent e) {
            delivered.incrementAndGet();
          }
        };
    sink.setContext(access.getLoggerContext());
    sink.start();
    AsyncAppender async = new AsyncAppender();
    async.setContext(access.getLoggerContext());
    async.setNeverBlock(true);
    async.setQueueSize(8192);
    async.addAppender(sink);
    async.start();
    Level before = access.getLevel();
    access.setLevel(Level.INFO);
    access.setAdditive(false);
    access.addAppender(async);
    try {
      RequestObserver withLog = new RequestObserver(ConfigFactory.parseString("mcp.api.access-log.enabled = on"));
      RequestObserver metricsOnly = new RequestObserver(ConfigFactory.parseString("mcp.api.access-log.enabled = off"));
      HttpRequest request = HttpRequest.create("/v1/tasks/task_0123456789abcdef").withMethod(HttpMethods.GET);
      HttpResponse response = HttpResponse.create().withStatus(StatusCodes.NOT_FOUND).addAttribute(Exchange.ERROR, ErrorCode.NOT_FOUND);
      Caller caller = new Caller("acme", null);
      double metricsNs = perCall(metricsOnly, request, response, caller);
      double logNs = perCall(withLog, request, response, caller);
      System.out.printf(
          "request observation per call: metrics only %.0f ns, metrics + access-log line %.0f ns (%d lines delivered)%n",
          metricsNs, logNs, delivered.get());
    } finally {
      access.detachAppender(async);
      access.setAdditive(true);
      access.setLevel(before);
      async.stop();
    }
  }

  private static double perCall(RequestObserver observer, HttpRequest request, HttpResponse response, Caller caller) {
    int warmup = 50_000;
    int measured = 200_000;
    for (int i = 0; i < warmup; i++) {
      call(observer, request, response, caller, i);
    }
    long start = System.nanoTime();
    for (int i = 0; i < measured; i++) {
      call(observer, request, response, caller, i);
    }
    return (System.nanoTime() - start) / (double) measured;
  }

  private static void call(RequestObserver observer, HttpRequest request, HttpResponse response, Caller caller, int i) {
    Exchange exchange = new Exchange("req_" + i, System.nanoTime());
    exchange.caller(caller);
    exchange.model("sim-small");
    observer.completed(exchange, request, response);
  }
}
