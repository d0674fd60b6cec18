-- Every written profile row tells the replicas' read caches, at commit, to
-- forget that account (platform::cache::NotifiedCache): GetLegalProfile is
-- served from memory between writes.
CREATE FUNCTION profiles_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('partnerhub_profiles', COALESCE(NEW.account_id, OLD.account_id)::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER profiles_changed
    AFTER INSERT OR UPDATE OR DELETE ON profiles
    FOR EACH ROW EXECUTE FUNCTION profiles_changed();
